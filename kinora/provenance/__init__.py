"""Provenance: visible watermark, C2PA signing material, signed manifests, and the stamp.

Modules (imported directly; each pulls its own heavy dependency only when used):

* :mod:`kinora.provenance.visible`: the moving "Kinora · @handle" mark drawn on frames.
* :mod:`kinora.provenance.certs`: signing material, a production chain or a local dev CA.
* :mod:`kinora.provenance.c2pa_manifest`: sign MP4s with a C2PA manifest and read it back.
* :mod:`kinora.provenance.stamp`: the whole stamp of one generated clip.
"""
