"""Import from the platforms' own export files (`trove import`, POST /api/import): the archive checks here,
the formats in each platform package (`ExportReader`), the run in `runner`."""
