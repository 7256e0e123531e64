package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const helperEnv = "MAILSYNC_STORE_CRASH_HELPER"

// TestHelperProcess is the child of TestCrashSafety: it writes batches into
// the state file named by helperEnv until it is killed (or, as a bound, 60 s
// or 100,000 batches pass). It does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	s, err := Open(path, Options{Timeout: 10 * time.Second, Logger: quietLog})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < 100_000 && time.Now().Before(deadline); i++ {
		n := uint32(1 + rng.IntN(300))
		err := s.Update(func(tx *Tx) error {
			st, err := tx.Folder("a", "INBOX")
			if err != nil {
				return err
			}
			if err := writeBatch(tx, "a", "INBOX", 1, st.LastUID+1, st.LastUID+n); err != nil {
				return err
			}
			// Park the batch's last message in the outbox, as a worker
			// does with one the sink has not acknowledged.
			last := st.LastUID + n
			return tx.PutOutbox("a", "INBOX", last, OutboxEntry{Key: fmt.Sprintf("a/INBOX/1/%d", last)})
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
	s.Close()
	os.Exit(0)
}

// TestCrashSafety SIGKILLs a writer at random moments and checks that every
// cursor on disk matches a fully recorded batch.
func TestCrashSafety(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	var lastSeen uint32
	for run := 0; run < 5; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "ready" {
					ready <- true
					return
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("run %d: helper exited before its first commit", run)
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("run %d: helper not ready within 60s", run)
		}
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		// Process.Kill sends SIGKILL to this pid only.
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		lastUID := verifyCrashState(t, path)
		if lastUID <= lastSeen {
			t.Fatalf("run %d: cursor %d did not advance past %d", run, lastUID, lastSeen)
		}
		t.Logf("run %d: killed at LastUID %d", run, lastUID)
		lastSeen = lastUID
	}
}

// verifyCrashState reopens the file after a kill and checks that the cursor,
// ledger, uid map, outbox and counters describe the same set of batches.
func verifyCrashState(t *testing.T, path string) uint32 {
	t.Helper()
	s, err := Open(path, Options{Timeout: 10 * time.Second, Logger: quietLog})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("Check() after kill: %v", err)
	}
	var last uint32
	err = s.View(func(tx *Tx) error {
		st, err := tx.Folder("a", "INBOX")
		if err != nil {
			return err
		}
		last = st.LastUID
		var n, maxUID uint32
		err = tx.tx.Bucket(bucketLedger).ForEach(func(k, v []byte) error {
			e, _, err := tx.Ledger(string(k))
			if err != nil {
				return err
			}
			if len(e.Provenance) != 1 || e.Status != StatusDelivered {
				return fmt.Errorf("ledger %s: unexpected entry %+v", k, e)
			}
			uid := e.Provenance[0].UID
			if want := fmt.Sprintf("a/INBOX/1/%d", uid); string(k) != want {
				return fmt.Errorf("ledger key %s names uid %d", k, uid)
			}
			n++
			maxUID = max(maxUID, uid)
			return nil
		})
		if err != nil {
			return err
		}
		if n != last || maxUID != last {
			return fmt.Errorf("cursor LastUID %d, but ledger has %d entries with max uid %d", last, n, maxUID)
		}
		var uids, prev uint32
		err = tx.UIDRange("a", "INBOX", 1, ^uint32(0), func(uid uint32, key string) error {
			if uid != prev+1 || key != "a/INBOX/1/"+strconv.Itoa(int(uid)) {
				return fmt.Errorf("uid map: uid %d -> %q after uid %d", uid, key, prev)
			}
			prev = uid
			uids++
			return nil
		})
		if err != nil {
			return err
		}
		if uids != last {
			return fmt.Errorf("uid map has %d entries, cursor says %d", uids, last)
		}
		err = tx.Outbox("a", "INBOX", func(uid uint32, e OutboxEntry) error {
			if uid > last {
				return fmt.Errorf("outbox uid %d beyond cursor %d", uid, last)
			}
			if _, ok, _ := tx.Ledger(e.Key); !ok {
				return fmt.Errorf("outbox uid %d key %s not in ledger", uid, e.Key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		c, err := tx.Counters("a", "INBOX")
		if err != nil {
			return err
		}
		if c.Delivered != int64(last) {
			return fmt.Errorf("counters say %d delivered, cursor %d", c.Delivered, last)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after kill: %v", err)
	}
	return last
}
