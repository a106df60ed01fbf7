package mem_test

import (
	"testing"

	"github.com/hoard-backup/hoard/backends"
	"github.com/hoard-backup/hoard/backends/backendtest"
	"github.com/hoard-backup/hoard/backends/mem"
)

func TestBackend(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backends.Backend { return mem.New() })
}
