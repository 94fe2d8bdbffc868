"""Test support shared by the tests and the benchmarks: the pipeline harness and sinks."""
