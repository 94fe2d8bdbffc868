"""The pure core: no sockets, no files, no clocks read behind your back."""
