"""`python -m bench steady|burst|capacity`: the whole-pipeline benchmarks (bench/scenarios.py);
`python -m bench compare`: kronwheel dev against APScheduler 3 (bench/compare.py);
`python -m bench crash`: one SIGKILL against APScheduler and arq (bench/crash.py)."""

import sys

if sys.argv[1:2] == ["compare"]:
    from bench.compare import main as compare_main

    raise SystemExit(compare_main(sys.argv[2:]))

if sys.argv[1:2] == ["crash"]:
    from bench.crash import main as crash_main

    raise SystemExit(crash_main(sys.argv[2:]))

from bench.scenarios import main

raise SystemExit(main())
