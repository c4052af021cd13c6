"""atomic_t operations (include/linux/atomic.h): each is one indivisible access to one cell."""


def atomic_read(s, ref) -> int:
    return s.load(ref)


def atomic_add(s, ref, n: int) -> int:
    slot = s.slot(ref, "updates")
    s.v[slot] += n
    return s.v[slot]


def atomic_sub_and_test(s, ref, n: int) -> bool:
    """Subtract ``n``; true when the result is zero."""
    return atomic_add(s, ref, -n) == 0


def atomic_inc_not_zero(s, ref) -> bool:
    """Increment unless zero; true when it incremented."""
    slot = s.slot(ref, "updates")
    if s.v[slot] == 0:
        return False
    s.v[slot] += 1
    return True
