"""The parts of the PyAV transcoder: reading the source, sizing and encoding the ladder,
packaging CMAF/HLS/DASH plus a progressive MP4, and thumbnails."""
