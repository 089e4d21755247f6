/*
 * parex/sync.h - synchronisation primitives that work between threads and,
 * placed in shared memory (px_shm), between processes: the counterparts of
 * Python's multiprocessing Lock, RLock, Semaphore, Event, Condition, Barrier
 * and Value.
 *
 * Every primitive is a fixed-size struct initialised in memory the caller
 * owns (px_*_init), so it can sit inside a shared layout. The structs'
 * contents are private; only their size and alignment are part of the API.
 * They are always process-shared: futexes are used without FUTEX_PRIVATE and
 * pthread objects are made PTHREAD_PROCESS_SHARED, so there is no pshared
 * flag; the same object works between threads at nearly the same cost.
 * Objects hold no pointers, so processes may map them at different
 * addresses. Copying an initialised object is undefined.
 *
 * Timeouts are relative nanoseconds; PX_FOREVER waits without limit and 0
 * only polls. Waits measure time on CLOCK_MONOTONIC, except px_lock and
 * px_rlock timed waits, which the C library measures on CLOCK_REALTIME.
 *
 * Dying holders: px_lock and px_rlock are robust (below). For the others a
 * process that dies while it holds a semaphore unit or is inside a barrier
 * simply never gives it back, as with POSIX semaphores; nothing is corrupted.
 *
 * Trust: an object in shared memory is input from every process that maps
 * it. px_sem, px_event, px_barrier and px_counter are plain words: a peer
 * that writes garbage into one can make it report any value, release or
 * stall waiters (a blocking call then waits until its timeout), but these
 * objects hold no indices or lengths, so no call reads or writes outside
 * the object, and a call with timeout 0 never blocks (a compare-and-swap
 * loop that a peer keeps failing gives up with -EAGAIN). px_lock, px_rlock
 * and px_cond are glibc pthread objects: a peer that corrupts one can make
 * calls on it fail, block or be refused by the C library; share them only
 * between processes that trust each other.
 *
 * NULL: every function refuses a NULL object (or other NULL pointer) with
 * -EINVAL; those that return a value rather than an error (px_sem_value,
 * px_event_is_set, px_barrier_waiting, px_counter_*) do nothing and return
 * 0 or false.
 */
#ifndef PAREX_SYNC_H
#define PAREX_SYNC_H

#include <parex/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- px_lock: a robust mutual-exclusion lock ---------------------------
 *
 * If the holder (thread or process) dies holding the lock, the next locker
 * gets it with -EOWNERDEAD: it now holds the lock, should repair the data the
 * lock protects, and calls px_lock_consistent() before unlocking. If it
 * unlocks without doing so, the lock becomes unusable and every later lock
 * attempt returns -ENOTRECOVERABLE (as with POSIX robust mutexes, on which
 * it is built). Not recursive: relocking from the holder returns -EDEADLK.
 */
typedef struct px_lock {
	PX_ALIGNAS(8) unsigned char opaque_[64];
} px_lock;

/* Initialises an unlocked lock in l. Returns 0, -EINVAL, or a pthread error. */
PX_API int px_lock_init(px_lock *l);

/*
 * Destroys an unlocked lock (optional for shared memory that is unmapped
 * anyway). Returns 0, -EINVAL, -EBUSY when locked.
 */
PX_API int px_lock_destroy(px_lock *l);

/*
 * Acquires l, waiting up to timeout_ns. Returns 0, -EOWNERDEAD (acquired;
 * the previous holder died, see above), -ENOTRECOVERABLE, -ETIMEDOUT,
 * -EBUSY (timeout 0 and held by another), -EDEADLK (already held by the
 * caller, whatever the timeout),
 * -EINVAL.
 */
PX_API int px_lock_lock(px_lock *l, int64_t timeout_ns);

/* px_lock_lock(l, 0). */
PX_API int px_lock_trylock(px_lock *l);

/* Releases l. Returns 0, -EPERM when the caller does not hold it, -EINVAL. */
PX_API int px_lock_unlock(px_lock *l);

/*
 * Marks the state protected by l as repaired after -EOWNERDEAD; the caller
 * must hold l. Returns 0, -EINVAL when l is not in the owner-died state.
 */
PX_API int px_lock_consistent(px_lock *l);

/* ---- px_rlock: a robust recursive lock ----------------------------------
 *
 * Like px_lock, but the holder may lock it again; it is released when
 * unlocked as many times as it was locked. Same robustness and errors
 * (-EAGAIN when the recursion count would overflow, never -EDEADLK).
 */
typedef struct px_rlock {
	PX_ALIGNAS(8) unsigned char opaque_[64];
} px_rlock;

PX_API int px_rlock_init(px_rlock *l);
PX_API int px_rlock_destroy(px_rlock *l);
PX_API int px_rlock_lock(px_rlock *l, int64_t timeout_ns);
PX_API int px_rlock_trylock(px_rlock *l);
PX_API int px_rlock_unlock(px_rlock *l);
PX_API int px_rlock_consistent(px_rlock *l);

/* ---- px_sem: a counting semaphore ---------------------------------------- */
typedef struct px_sem {
	PX_ALIGNAS(8) unsigned char opaque_[16];
} px_sem;

/* Max value of a semaphore. */
#define PX_SEM_VALUE_MAX 0x7fffffffu

/* Initialises s with value (<= PX_SEM_VALUE_MAX). Returns 0, -EINVAL. */
PX_API int px_sem_init(px_sem *s, uint32_t value);

/*
 * Takes one unit, waiting up to timeout_ns for one. Returns 0, -EAGAIN
 * (timeout 0 and none), -ETIMEDOUT, -EINVAL.
 */
PX_API int px_sem_wait(px_sem *s, int64_t timeout_ns);

/* px_sem_wait(s, 0). */
PX_API int px_sem_trywait(px_sem *s);

/*
 * Gives back n units (n >= 1), waking up to n waiters. Returns 0, -EINVAL,
 * -EOVERFLOW (the value would exceed PX_SEM_VALUE_MAX, also for any n above
 * PX_SEM_VALUE_MAX; nothing changes), -EAGAIN (the value kept changing under
 * a bounded number of attempts: only a peer rewriting it does that).
 */
PX_API int px_sem_post(px_sem *s, uint32_t n);

/* The current value (a snapshot). */
PX_API uint32_t px_sem_value(const px_sem *s);

/* ---- px_event: a flag that threads or processes wait for ---------------- */
typedef struct px_event {
	PX_ALIGNAS(8) unsigned char opaque_[8];
} px_event;

/* Initialises e, set or clear. Returns 0, -EINVAL. */
PX_API int px_event_init(px_event *e, bool set);

/* Sets the flag and wakes every waiter. Returns 0, -EINVAL, -EAGAIN (as
 * px_sem_post()). */
PX_API int px_event_set(px_event *e);

/* Clears the flag. Returns 0, -EINVAL. */
PX_API int px_event_clear(px_event *e);

/* True while the flag is set. */
PX_API bool px_event_is_set(const px_event *e);

/*
 * Waits until the flag is set, at most timeout_ns. Returns 0 (set),
 * -ETIMEDOUT (also for timeout 0 when clear), -EINVAL.
 */
PX_API int px_event_wait(px_event *e, int64_t timeout_ns);

/* ---- px_cond: a condition variable used with a px_lock ------------------ */
typedef struct px_cond {
	PX_ALIGNAS(8) unsigned char opaque_[64];
} px_cond;

PX_API int px_cond_init(px_cond *c);
PX_API int px_cond_destroy(px_cond *c);

/*
 * Atomically releases l (held by the caller) and waits to be notified, at
 * most timeout_ns; holds l again on return, whatever it returns. Wakeups may
 * be spurious: re-check the predicate. Returns 0, -ETIMEDOUT, -EOWNERDEAD
 * (l's previous holder died: see px_lock), -EPERM (l not held), -EINVAL.
 */
PX_API int px_cond_wait(px_cond *c, px_lock *l, int64_t timeout_ns);

/* Wakes one waiter / every waiter. Returns 0, -EINVAL. */
PX_API int px_cond_notify(px_cond *c);
PX_API int px_cond_notify_all(px_cond *c);

/* ---- px_barrier: parties wait until all have arrived -------------------- */
typedef struct px_barrier {
	PX_ALIGNAS(8) unsigned char opaque_[16];
} px_barrier;

/* Returned by px_barrier_wait() to exactly one party per round. */
#define PX_BARRIER_SERIAL 1

/* Initialises b for parties (>= 1) parties. Returns 0, -EINVAL. */
PX_API int px_barrier_init(px_barrier *b, uint32_t parties);

/*
 * Waits until parties parties have called this in the current round, at
 * most timeout_ns. Returns PX_BARRIER_SERIAL to one of them and 0 to the
 * others; -ETIMEDOUT when the time ran out, which breaks the barrier (as in
 * Python): every party waiting now, and every later call, gets -EPIPE until
 * px_barrier_reset(). -EINVAL for NULL.
 */
PX_API int px_barrier_wait(px_barrier *b, int64_t timeout_ns);

/*
 * Breaks the barrier on purpose: waiters and later callers get -EPIPE.
 * Returns 0, -EINVAL.
 */
PX_API int px_barrier_abort(px_barrier *b);

/*
 * Starts a fresh round (nobody may be waiting); repairs a broken barrier.
 * Returns 0, -EINVAL.
 */
PX_API int px_barrier_reset(px_barrier *b);

/* Parties currently waiting in this round (a snapshot). */
PX_API uint32_t px_barrier_waiting(const px_barrier *b);

/* ---- px_counter: a shared atomic 64-bit counter ------------------------- */
typedef struct px_counter {
	PX_ALIGNAS(8) int64_t opaque_;
} px_counter;

/* Initialises c to value. Returns 0, -EINVAL. */
PX_API int px_counter_init(px_counter *c, int64_t value);

/* Adds delta (wrapping) and returns the new value (0 for NULL c). */
PX_API int64_t px_counter_add(px_counter *c, int64_t delta);

/* The current value (0 for NULL c). */
PX_API int64_t px_counter_get(const px_counter *c);

/* Stores value; returns the previous value (0 for NULL c: nothing stored). */
PX_API int64_t px_counter_exchange(px_counter *c, int64_t value);

/*
 * Stores desired if the counter holds *expected and returns true; otherwise
 * writes the current value to *expected and returns false. NULL c or
 * expected: returns false, changes nothing.
 */
PX_API bool px_counter_cas(px_counter *c, int64_t *expected, int64_t desired);

#ifdef __cplusplus
}
#endif

#endif /* PAREX_SYNC_H */
