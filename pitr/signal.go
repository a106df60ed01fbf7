package pitr

import "syscall"

// sigZero probes a process without disturbing it.
const sigZero = syscall.Signal(0)
