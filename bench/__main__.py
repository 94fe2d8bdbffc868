"""`python -m bench steady|burst|capacity`: the whole-pipeline benchmarks (bench/scenarios.py)."""

from bench.scenarios import main

raise SystemExit(main())
