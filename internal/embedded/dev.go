package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/linkflow/linkflow/store"
)

// DevState is what `linkflow dev` keeps in its data directory (dev.json)
// between runs: the secrets it generated once, and where the servers it
// runs listen, so that admin commands pointed at the data directory reach
// them.
type DevState struct {
	EncryptionKey string `json:"encryptionKey"`
	APIKey        string `json:"apiKey"`
	WebhookSecret string `json:"webhookSecret"`
	RedisURL      string `json:"redisUrl,omitempty"`
	NATSURL       string `json:"natsUrl,omitempty"`
	APIURL        string `json:"apiUrl,omitempty"`
}

// LoadDevState reads dir's dev.json, generating the secrets it lacks (all of
// them on the first run).
func LoadDevState(dir string) (*DevState, error) {
	st := &DevState{}
	b, err := os.ReadFile(filepath.Join(dir, "dev.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("%s/dev.json: %w", dir, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if st.EncryptionKey == "" {
		st.EncryptionKey = store.GenerateKey("dev1")
	}
	if st.APIKey == "" {
		st.APIKey = store.NewAPIKey()
	}
	if st.WebhookSecret == "" {
		st.WebhookSecret = store.NewWebhookSecret()
	}
	return st, nil
}

// ReadDevState reads the state of the dev that ran with data directory dir,
// for commands pointed at it (admin commands, linkflow listen).
func ReadDevState(dir string) (*DevState, error) {
	b, err := os.ReadFile(filepath.Join(dir, "dev.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no dev.json: is it the --data-dir of a linkflow dev that ran?", dir)
	}
	if err != nil {
		return nil, err
	}
	st := &DevState{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s/dev.json: %w", dir, err)
	}
	if st.RedisURL == "" || st.APIURL == "" {
		return nil, fmt.Errorf("%s/dev.json: the dev of this data directory has not started yet", dir)
	}
	return st, nil
}

// Save writes the state to dir's dev.json, readable by its owner only.
func (st *DevState) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(filepath.Join(dir, "dev.json"), b, 0o600)
}

// LockDevDir makes dir the data directory of this process's dev alone: a
// second dev on it would run its own Redis and JetStream on the same files
// and rewrite dev.json under the first, whose admin commands would then
// reach the second's servers. The lock (flock on dir/dev.lock, naming its
// holder's pid) lasts until release, or the process's end. On a file system
// that cannot lock it returns a *NoLockError with a release that does
// nothing: dev goes on unguarded.
func LockDevDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "dev.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(f.Name())
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			// A file system without locks (NFS mounted nolock, say): dev
			// runs as before, unguarded.
			return func() {}, &NoLockError{Dir: dir, Err: err}
		}
		holder := "another process"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			holder = fmt.Sprintf("process %d", pid)
		}
		return nil, fmt.Errorf("a linkflow dev (%s) is running with the data directory %s: stop it, or give this dev a --data-dir of its own (and other ports)", holder, dir)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { _ = f.Close() }, nil // closing the file releases the lock
}

// NoLockError says the data directory's file system cannot lock: dev runs
// without the guard against a second dev there.
type NoLockError struct {
	Dir string
	Err error
}

func (e *NoLockError) Error() string {
	return fmt.Sprintf("cannot lock the data directory %s (%v): a second dev on it would not be stopped", e.Dir, e.Err)
}

// DevServers are the servers dev runs beside itself: an in-process NATS
// server with JetStream and a redis-server child, each only when no URL of
// an outside one is given.
type DevServers struct {
	NATSURL, RedisURL string
	nats              *server.Server
	redis             *Redis
}

// StartDevServers starts what is missing, keeping its data under dir: NATS
// on natsPort when natsURL is empty, redis-server on redisPort when redisURL
// is empty.
func StartDevServers(dir, natsURL, redisURL string, natsPort, redisPort int) (*DevServers, error) {
	d := &DevServers{NATSURL: natsURL, RedisURL: redisURL}
	// A taken port fails at once, naming the flag to change: neither server
	// would say so clearly, and a Redis child that cannot bind would leave
	// another Redis answering on its port.
	if natsURL == "" && natsPort > 0 {
		if err := CheckFree(fmt.Sprintf("127.0.0.1:%d", natsPort), "NATS", "--nats-port"); err != nil {
			return nil, err
		}
	}
	if redisURL == "" && redisPort > 0 {
		if err := CheckFree(fmt.Sprintf("127.0.0.1:%d", redisPort), "Redis", "--redis-port"); err != nil {
			return nil, err
		}
	}
	if natsURL == "" {
		ns, err := StartNATS(NATSOptions{Dir: filepath.Join(dir, "jetstream"), Port: natsPort})
		if err != nil {
			return nil, fmt.Errorf("embedded NATS (port %d; choose another with --nats-port): %w", natsPort, err)
		}
		d.nats, d.NATSURL = ns, ns.ClientURL()
	}
	if redisURL == "" {
		rs, err := StartRedis(RedisOptions{Dir: filepath.Join(dir, "redis"), Port: redisPort, AppendOnly: true})
		if err != nil {
			d.Stop()
			return nil, fmt.Errorf("redis-server child (port %d; choose another with --redis-port): %w", redisPort, err)
		}
		d.redis, d.RedisURL = rs, rs.URL
	}
	return d, nil
}

// Stop stops the servers dev started.
func (d *DevServers) Stop() {
	if d.nats != nil {
		d.nats.Shutdown()
		d.nats.WaitForShutdown()
	}
	if d.redis != nil {
		d.redis.Stop()
	}
}
