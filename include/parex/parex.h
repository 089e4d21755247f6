/*
 * parex/parex.h - the umbrella header: everything parex offers.
 */
#ifndef PAREX_H
#define PAREX_H

#include <parex/channel.h>
#include <parex/common.h>
#include <parex/executor.h>
#include <parex/future.h>
#include <parex/io.h>
#include <parex/queue.h>
#include <parex/ring.h>
#include <parex/shm.h>
#include <parex/sync.h>
#include <parex/version.h>

#endif /* PAREX_H */
