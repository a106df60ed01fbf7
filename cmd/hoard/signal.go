package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// interruptGrace is how long a command may take to stop after SIGINT or
// SIGTERM cancelled its context (to remove its lock, say) before hoard
// exits anyway: a read that ignores the context (a FIFO, a hung network
// file system) must not keep it alive.
const interruptGrace = 5 * time.Second

// interruptContext returns a context that SIGINT and SIGTERM cancel. After
// the first signal the process exits with exitInterrupted when a second
// signal arrives or interruptGrace has passed, whichever comes first.
// stop ends the watching.
func interruptContext(stderr io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
			return
		case <-sigs:
		}
		cancel()
		select {
		case <-done:
			return
		case <-sigs:
		case <-time.After(interruptGrace):
		}
		fmt.Fprintln(stderr, "hoard: interrupted")
		os.Exit(exitInterrupted)
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// readCtx runs read in a goroutine and returns its result, or ctx's error
// as soon as ctx is done: for reads that cannot be cancelled otherwise (a
// passphrase file that is a FIFO, a terminal prompt). The goroutine is left
// behind blocked; the process is about to exit.
func readCtx(ctx context.Context, read func() ([]byte, error)) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := read()
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
