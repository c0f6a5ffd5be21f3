"""Every table of the dispatch domain, imported in one place for the migration environment."""
