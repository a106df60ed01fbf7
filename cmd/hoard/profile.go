package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"time"
)

// startProfile writes a CPU profile to the file HOARD_CPUPROFILE names, and
// a heap profile to the file HOARD_MEMPROFILE names and an execution trace
// to the file HOARD_TRACE names, for tuning
// (bench/README.md); the returned function ends them. Without the variables
// it does nothing. The heap profile is looked at every 100 ms and kept when
// more of the heap is in use than at any earlier look, so it shows what
// holds memory at the peak, which is what peak RSS measures.
func startProfile() func() {
	stopHeap, stopTrace := startMemProfile(), startTrace()
	stopMem := func() { stopTrace(); stopHeap() }
	path := os.Getenv("HOARD_CPUPROFILE")
	if path == "" {
		return stopMem
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hoard: HOARD_CPUPROFILE:", err)
		return stopMem
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		stopMem()
	}
}

func startMemProfile() func() {
	path := os.Getenv("HOARD_MEMPROFILE")
	if path == "" {
		return func() {}
	}
	var peak uint64
	write := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse <= peak {
			return
		}
		peak = ms.HeapInuse
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hoard: HOARD_MEMPROFILE:", err)
			return
		}
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				write()
				return
			case <-t.C:
				write()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// startTrace writes an execution trace (go tool trace) to the file
// HOARD_TRACE names: it shows when cores sit idle, which a CPU profile
// does not.
func startTrace() func() {
	path := os.Getenv("HOARD_TRACE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = trace.Start(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hoard: HOARD_TRACE:", err)
		return func() {}
	}
	return func() {
		trace.Stop()
		f.Close()
	}
}
