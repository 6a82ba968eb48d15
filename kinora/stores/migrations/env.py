"""Alembic environment: Kinora always passes an open connection (see kinora.stores.db)."""

from alembic import context

from kinora.stores.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
