"""Running the suite and writing its outputs: manifests, tables, (later) notebooks and HTML."""
