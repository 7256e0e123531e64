package dovecottest

import (
	"fmt"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

// BenchmarkHarnessStart measures Start (config, launch, first greeting)
// plus Stop; the directories are removed when the benchmark ends.
func BenchmarkHarnessStart(b *testing.B) {
	for b.Loop() {
		Start(b).Stop(b)
	}
}

// BenchmarkSeedMaildir writes 20,000 messages of 27 KB per iteration (540 MB,
// on tmpfs when /dev/shm is available) and then lets Dovecot index them
// with one STATUS; deleting the folder afterwards is not timed.
func BenchmarkSeedMaildir(b *testing.B) {
	const n, size = 20_000, 27 * 1024
	s := Start(b)
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testMessage(i, size)
	}
	b.SetBytes(n * size)
	for i := 0; b.Loop(); i++ {
		folder := fmt.Sprintf("Bench%d", i)
		s.SeedMaildir(b, DefaultUser, folder, msgs)
		if got := *s.Status(b, DefaultUser, folder).NumMessages; got != n {
			b.Fatalf("STATUS MESSAGES = %d, want %d", got, n)
		}
		// Free the 540 MB before the next round; tmpfs holds it in memory.
		b.StopTimer()
		if err := s.session(DefaultUser, func(c *imapclient.Client) error { return c.Delete(folder).Wait() }); err != nil {
			b.Fatalf("delete %s: %v", folder, err)
		}
		b.StartTimer()
	}
}
