"""PostGIS store: tables, migrations, the local cluster, reads and bulk writes."""
