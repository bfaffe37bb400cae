package embedded_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/linkflow/linkflow/internal/embedded"
)

// A redis-server child that cannot bind its port must not be mistaken for
// the Redis that answers there: that one is someone else's (another dev's),
// with other keys.
func TestStartRedisRefusesAnotherRedis(t *testing.T) {
	t.Parallel()
	first, err := embedded.StartRedis(embedded.RedisOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Kill)
	_, port, _ := net.SplitHostPort(first.Addr)
	p, _ := strconv.Atoi(port)
	second, err := embedded.StartRedis(embedded.RedisOptions{Dir: t.TempDir(), Port: p})
	if err == nil {
		second.Kill()
		t.Fatal("a second redis-server on a taken port started and answered with the first one's data")
	}
	if !strings.Contains(err.Error(), first.Addr) {
		t.Fatalf("error %q does not name the address", err)
	}
	// And dev's servers refuse the taken port before starting anything,
	// naming the flag to change.
	_, err = embedded.StartDevServers(t.TempDir(), "nats://unused", "", 0, p)
	if err == nil || !strings.Contains(err.Error(), "--redis-port") {
		t.Fatalf("StartDevServers on a taken Redis port: %v", err)
	}
}

func TestCheckFree(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = embedded.CheckFree(ln.Addr().String(), "the API", "--http-addr")
	if err == nil || !strings.Contains(err.Error(), "--http-addr") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("CheckFree on a taken address: %v", err)
	}
}

// One dev per data directory: a second would run its own servers on the
// first one's files and rewrite its dev.json. Not parallel: a test starting
// a child process meanwhile holds a copy of the lock's descriptor between
// its fork and its exec, and the lock with it.
func TestLockDevDir(t *testing.T) {
	dir := t.TempDir()
	release, err := embedded.LockDevDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = embedded.LockDevDir(dir)
	if err == nil || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("a second lock of the data directory: %v, want a refusal naming the holder and --data-dir", err)
	}
	release()
	again, err := embedded.LockDevDir(dir)
	if err != nil {
		t.Fatalf("the lock after its release: %v", err)
	}
	again()
}
