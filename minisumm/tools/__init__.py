"""The tool around the lesson: files, run folders, caches, diagnostics, export and compare."""
