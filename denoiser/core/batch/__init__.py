"""Folder jobs: planning (discovery, naming, collisions, sharding) and the runner with its report."""
