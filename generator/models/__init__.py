"""Layer 2: SQLAlchemy types, table metadata, DDL and schema comparison."""
