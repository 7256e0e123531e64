package sink

import (
	"net"
	"net/http"
	stdsync "sync"
	"time"
)

// DefaultHTTPTimeout bounds one CRM request, body included.
const DefaultHTTPTimeout = 60 * time.Second

// UserAgent is sent with every CRM request, so a CRM admin can tell
// mailsync's calls from others in their logs.
var UserAgent = "mailsync/dev"

// NewHTTPClient returns a client with a whole-request timeout, bounded dial,
// TLS handshake and header waits, verified TLS, and mailsync's User-Agent.
func NewHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = timeout
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Timeout: timeout, Transport: userAgent{t}}
}

type userAgent struct{ next http.RoundTripper }

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("User-Agent") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", UserAgent)
	}
	return u.next.RoundTrip(r)
}

// MemoryKV is a KV in memory, for tests and for adapters opened without a
// state file (mailsync check).
type MemoryKV struct {
	mu stdsync.Mutex
	m  map[string][]byte
}

func (k *MemoryKV) Get(key string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[key], nil
}

func (k *MemoryKV) Put(key string, value []byte) error {
	return k.PutMany(map[string][]byte{key: value})
}

func (k *MemoryKV) PutMany(kv map[string][]byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string][]byte{}
	}
	for key, v := range kv {
		k.m[key] = append([]byte(nil), v...)
	}
	return nil
}

func (k *MemoryKV) Delete(key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
	return nil
}
