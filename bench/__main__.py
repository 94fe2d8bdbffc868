"""`python -m bench steady|burst|capacity`: the whole-pipeline benchmarks (bench/scenarios.py);
`python -m bench compare`: kronwheel dev against APScheduler 3 (bench/compare.py)."""

import sys

if sys.argv[1:2] == ["compare"]:
    from bench.compare import main as compare_main

    raise SystemExit(compare_main(sys.argv[2:]))

from bench.scenarios import main

raise SystemExit(main())
