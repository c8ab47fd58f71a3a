"""What Flowtide keeps outside Temporal: the database, its migrations, projects, keys, revisions, connections."""
