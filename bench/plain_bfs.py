"""The floor: a plain-Python BFS of the lost-update model over flat tuples, written by hand.

State: (x, then per thread pc, tmp, k) with pc 0 = read, 1 = write, 2 = done; a finished
thread's locals are reset, as ptmc does. No checks, no traces: what Python itself costs.

    python3 bench/plain_bfs.py N K      # prints: states transitions seconds (CPU)
"""
import sys
import time


def explore(n: int, k: int) -> tuple[int, int]:
    init = (0,) + (0, 0, 0) * n
    seen, frontier, transitions = {init}, [init], 0
    bases = range(1, 3 * n + 1, 3)
    while frontier:
        level = []
        for s in frontier:
            for b in bases:
                pc = s[b]
                if pc == 0:  # tmp = x
                    nxt = s[:b] + (1, s[0]) + s[b + 2:]
                elif pc == 1:  # x = tmp + 1; k += 1; read again or finish
                    done = s[b + 2] + 1
                    tail = (0, s[b + 1], done) if done < k else (2, 0, 0)
                    nxt = (s[b + 1] + 1,) + s[1:b] + tail + s[b + 3:]
                else:
                    continue
                transitions += 1
                if nxt not in seen:
                    seen.add(nxt)
                    level.append(nxt)
        frontier = level
    return len(seen), transitions


if __name__ == "__main__":
    n, k = (int(a) for a in sys.argv[1:3])
    start = time.process_time()
    states, transitions = explore(n, k)
    print(states, transitions, round(time.process_time() - start, 3))
