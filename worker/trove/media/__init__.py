"""Media: copying every photo/video to storage (downloader), the storage backends, signed URLs."""
