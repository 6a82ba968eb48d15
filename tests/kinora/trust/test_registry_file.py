import json

import pytest

from kinora.errors import InputFileError
from kinora.stores import rights as rights_store
from kinora.trust.registry_file import import_rows, read_registry_file

HEADER = "holder,work,kind,aliases,description,policy,terms\n"


def test_csv_and_jsonl_give_the_same_rows(tmp_path):
    csv_file = tmp_path / "r.csv"
    csv_file.write_text(HEADER + 'Acme,Rocket Rex,character,Rex|RR,A rocket dino,allowed,"{""attribution"": ""Acme""}"\n')
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(json.dumps({"holder": "Acme", "work": "Rocket Rex", "kind": "character", "aliases": ["Rex", "RR"],
                                 "description": "A rocket dino", "policy": "allowed", "terms": {"attribution": "Acme"}}) + "\n")
    assert read_registry_file(csv_file) == read_registry_file(jsonl)


@pytest.mark.parametrize(
    "line, where",
    [
        ("Acme,Rocket Rex,spaceship,,d,blocked,", "line 3, field kind"),
        ("Acme,Rocket Rex,character,,d,maybe,", "line 3, field policy"),
        ("Acme,Rocket Rex,character,,d,allowed,{not json", "line 3, field terms"),
    ],
)
def test_a_bad_row_is_named_and_nothing_imported(tmp_path, seeded, line, where):
    f = tmp_path / "r.csv"
    f.write_text(HEADER + "Acme,Good Work,brand,,d,blocked,\n" + line + "\n")
    with pytest.raises(InputFileError) as exc:
        read_registry_file(f)
    assert str(exc.value).startswith(f"{f}: {where}")


def test_import_is_idempotent(tmp_path, seeded):
    f = tmp_path / "r.csv"
    f.write_text(HEADER + "Acme,Rocket Rex,character,Rex,d,blocked,\n")
    rows = read_registry_file(f)
    with seeded.engine.begin() as conn:
        before = len(rights_store.list_works(conn=conn))
        import_rows(conn=conn, rows=rows)
        import_rows(conn=conn, rows=rows)
        assert len(rights_store.list_works(conn=conn)) == before + 1
