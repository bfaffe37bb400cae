package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"

	"github.com/linkflow/linkflow/operations/sandbox"
	"github.com/linkflow/linkflow/outbox"
	"github.com/linkflow/linkflow/store"
)

// The deploy tests keep deploy/ true to the binary: every role, flag and
// LINKFLOW_* variable a file names exists (asked of the built binary, not
// copied here), ports, probes and images agree across files, and the KEDA
// triggers and the dashboard name only consumers and metrics that exist.

const (
	repoRoot  = "../.."
	deployDir = "../../deploy"
)

// A roleFlag is one flag of a role, read from `linkflow <role> -h`.
type roleFlag struct {
	typ string // "" for a bool
	def string // default, unquoted; "" when none is printed
}

var roleCache = struct {
	sync.Mutex
	m map[string]map[string]roleFlag
}{m: map[string]map[string]roleFlag{}}

var (
	flagLine    = regexp.MustCompile(`^  -([a-z0-9][a-z0-9-]*)(?: (\S+))?$`)
	defaultText = regexp.MustCompile(`\(default (.*)\)$`)
)

// flagsOf runs `linkflow role -h` and returns the role's flags; it fails the
// test when the binary has no such role.
func flagsOf(t *testing.T, role string) map[string]roleFlag {
	t.Helper()
	roleCache.Lock()
	defer roleCache.Unlock()
	if f, ok := roleCache.m[role]; ok {
		return f
	}
	out, err := exec.Command(linkflowBin, role, "-h").CombinedOutput()
	// linkflow exits 1 on -h (flag.ErrHelp); the flag package's own
	// ExitOnError would exit 0. An unknown command also exits 1, so the
	// usage line decides.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("linkflow %s -h: %v\n%s", role, err, out)
	}
	if !strings.Contains(string(out), "Usage: linkflow "+role+" [flags]") {
		t.Fatalf("linkflow has no role %q: `linkflow %s -h` printed\n%s", role, role, out)
	}
	flags := map[string]roleFlag{}
	var last string
	for _, line := range strings.Split(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			flags[last] = roleFlag{typ: m[2]}
			continue
		}
		if m := defaultText.FindStringSubmatch(line); m != nil && last != "" {
			f := flags[last]
			f.def = m[1]
			if u, err := strconv.Unquote(m[1]); err == nil {
				f.def = u
			}
			flags[last] = f
		}
	}
	if len(flags) == 0 {
		t.Fatalf("no flags read from `linkflow %s -h`:\n%s", role, out)
	}
	roleCache.m[role] = flags
	return flags
}

// flagOfEnv is the flag a LINKFLOW_* variable sets, if role has it.
func flagOfEnv(t *testing.T, role, env string) (string, bool) {
	for name := range flagsOf(t, role) {
		if envName(name) == env {
			return name, true
		}
	}
	return "", false
}

// A process is one linkflow process a deployment file starts: its role, its
// arguments after the role, and the environment it gets.
type process struct {
	where string
	role  string
	args  []string
	env   map[string]string
}

// newProcess checks that cmd (the binary, optionally, then the role and its
// flags) names a role and only flags that role has.
func newProcess(t *testing.T, where string, cmd []string, env map[string]string) *process {
	t.Helper()
	if len(cmd) > 0 && filepath.Base(cmd[0]) == "linkflow" {
		cmd = cmd[1:]
	}
	if len(cmd) == 0 {
		t.Fatalf("%s: no linkflow role in its command", where)
	}
	p := &process{where: where, role: cmd[0], args: cmd[1:], env: env}
	flags := flagsOf(t, p.role)
	for i := 0; i < len(p.args); i++ {
		a := p.args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: argument %q is not a flag: linkflow %s ignores it", where, a, p.role)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := flags[name]
		if !ok {
			t.Errorf("%s: linkflow %s has no flag --%s", where, p.role, name)
			continue
		}
		if !hasValue && f.typ != "" {
			i++ // --flag value
		}
	}
	for k := range env {
		if !strings.HasPrefix(k, "LINKFLOW_") {
			continue
		}
		if _, ok := flagOfEnv(t, p.role, k); !ok {
			t.Errorf("%s: linkflow %s has no flag for %s", where, p.role, k)
		}
	}
	return p
}

// value is what the process's flag will be: the command line wins over the
// environment, which wins over the default.
func (p *process) value(t *testing.T, name string) string {
	t.Helper()
	f, ok := flagsOf(t, p.role)[name]
	if !ok {
		t.Fatalf("%s: linkflow %s has no flag --%s", p.where, p.role, name)
	}
	for i, a := range p.args {
		n, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n != name {
			continue
		}
		if hasValue {
			return v
		}
		if f.typ == "" {
			return "true"
		}
		if i+1 < len(p.args) {
			return p.args[i+1]
		}
	}
	if v, ok := p.env[envName(name)]; ok {
		return v
	}
	return f.def
}

func (p *process) has(t *testing.T, name string) bool { _, ok := flagsOf(t, p.role)[name]; return ok }

// port is the port of an address flag (--http-addr, --metrics-addr); it
// fails when the address listens on loopback only, which nothing outside
// the container reaches.
func (p *process) port(t *testing.T, name string) int {
	t.Helper()
	addr := p.value(t, name)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: --%s %q: %v", p.where, name, addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("%s: --%s is %q, loopback: no probe, Service or scraper outside the container reaches it", p.where, name, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s: --%s %q: %v", p.where, name, addr, err)
	}
	return n
}

// stopNeeds is how long the process may take to stop after SIGTERM: a
// worker's --shutdown-grace, the 10s the api's HTTP server and the
// dispatcher wait for requests and attempts in flight (not flags), and
// for an api then up to 26s more for a connection's refresh or deletion at
// the provider to be recorded (a request may take the connection's lock at
// the end of the 10s: the provider's 15s and the commit's retries under the
// lock, plus one Redis call), plus 5s of flushing acks and hand-backs.
func (p *process) stopNeeds(t *testing.T) time.Duration {
	grace := 10 * time.Second
	if p.role == "api" {
		grace += 26 * time.Second
	}
	if p.has(t, "shutdown-grace") {
		d, err := time.ParseDuration(p.value(t, "shutdown-grace"))
		if err != nil {
			t.Fatalf("%s: --shutdown-grace: %v", p.where, err)
		}
		grace = d
	}
	return grace + 5*time.Second
}

// checkSharedEnv checks a source of variables read by several roles (a
// ConfigMap, a Secret, an env file): a process ignores the variables of
// other roles, so each variable must belong to at least one of its readers.
// A source read by one role only is checked by newProcess, strictly.
func checkSharedEnv(t *testing.T, where string, vars map[string]string, roles []string) {
	t.Helper()
	if len(roles) == 0 {
		t.Errorf("%s: no linkflow role reads it", where)
	}
	for k := range vars {
		if !strings.HasPrefix(k, "LINKFLOW_") {
			t.Errorf("%s: %s is not a linkflow variable", where, k)
			continue
		}
		if !slices.ContainsFunc(roles, func(r string) bool { _, ok := flagOfEnv(t, r, k); return ok }) {
			t.Errorf("%s: %s is no flag of any role that reads it (%s)", where, k, strings.Join(roles, ", "))
		}
	}
}

// checkTopology checks the cluster settings a process gets: a NATS URL per
// server, as many stream replicas as servers (3), and a Redis Cluster node
// list. It returns the NATS and Redis hosts.
func checkTopology(t *testing.T, p *process) (natsHosts, redisHosts []string) {
	t.Helper()
	for _, u := range strings.Split(p.value(t, "nats-url"), ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || pu.Scheme != "nats" || pu.Port() == "" {
			t.Errorf("%s: NATS URL %q: want nats://host:port", p.where, u)
			continue
		}
		natsHosts = append(natsHosts, pu.Host)
	}
	if n := strconv.Itoa(len(natsHosts)); len(natsHosts) != 3 || p.value(t, "stream-replicas") != n {
		t.Errorf("%s: %d NATS servers and --stream-replicas %s: want 3 of each", p.where, len(natsHosts), p.value(t, "stream-replicas"))
	}
	// A comma-separated list is a cluster (cmd/linkflow newRedis), host:port
	// each: the cluster form drops a redis:// prefix and takes no password.
	for _, a := range strings.Split(p.value(t, "redis-url"), ",") {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil || strings.Contains(a, "/") || strings.Contains(a, "@") {
			t.Errorf("%s: Redis Cluster node %q: want host:port", p.where, a)
			continue
		}
		redisHosts = append(redisHosts, strings.TrimSpace(a))
	}
	if len(redisHosts) < 3 {
		t.Errorf("%s: %d Redis Cluster nodes, want at least 3 masters", p.where, len(redisHosts))
	}
	return natsHosts, redisHosts
}

// --- Dockerfile -------------------------------------------------------------

// TestDeployDockerfile: the image runs the binary as its entrypoint (the
// manifests pass only the role and flags) as a numeric non-root user (what
// runAsNonRoot can verify).
func TestDeployDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["/linkflow"\]$`).MatchString(df) {
		t.Error(`deploy/Dockerfile: want ENTRYPOINT ["/linkflow"]: the manifests give only the role and its flags`)
	}
	if !strings.Contains(df, "./cmd/linkflow") {
		t.Error("deploy/Dockerfile does not build ./cmd/linkflow")
	}
	m := regexp.MustCompile(`(?m)^USER (\d+)(?::(\d+))?$`).FindStringSubmatch(df)
	if m == nil || m[1] == "0" {
		t.Error("deploy/Dockerfile: want a numeric non-root USER: Kubernetes' runAsNonRoot cannot verify a user name")
	}
	// The official golang images do not fetch another toolchain
	// (GOTOOLCHAIN=local): a cached golang:1.26 older than go.mod's go line
	// would fail the build. The build image names go.mod's version.
	mod, err := os.ReadFile(filepath.Join(deployDir, "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goLine == nil || !regexp.MustCompile(`(?m)^FROM golang:`+regexp.QuoteMeta(string(goLine[1]))+`\b`).MatchString(df) {
		t.Errorf("deploy/Dockerfile: want FROM golang:%s (go.mod's go line)", goLine[1])
	}
	// Dev's data directory (its generated keys) stays out of the build
	// context wherever it was made.
	ignore, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\*\*/\.linkflow$`).Match(ignore) {
		t.Error("deploy/Dockerfile.dockerignore: want **/.linkflow (dev's data directory, at any depth)")
	}
}

// --- Kubernetes -------------------------------------------------------------

type intOrString string

func (v *intOrString) UnmarshalYAML(n *yaml.Node) error { *v = intOrString(n.Value); return nil }

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// selects says whether sel picks pods labeled labels (matchLabels only).
func (sel labelSelector) selects(labels map[string]string) bool {
	if len(sel.MatchLabels) == 0 {
		return true
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type probe struct {
	HTTPGet *struct {
		Path string      `yaml:"path"`
		Port intOrString `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

// patience is how long a probe lets fail before it acts (Kubernetes'
// defaults: every 10s, 3 times).
func (p *probe) patience() time.Duration {
	return time.Duration(cmp.Or(p.PeriodSeconds, 10)*cmp.Or(p.FailureThreshold, 3)) * time.Second
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom any    `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		Prefix       string `yaml:"prefix"`
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext securityContext `yaml:"securityContext"`
}

type k8sObject struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
}

type deploymentSpec struct {
	Replicas *int          `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               securityContext `yaml:"securityContext"`
			Containers                    []container     `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []servicePort     `yaml:"ports"`
}

type servicePort struct {
	Name       string      `yaml:"name"`
	Port       int         `yaml:"port"`
	TargetPort intOrString `yaml:"targetPort"`
}

type networkPolicySpec struct {
	PodSelector labelSelector `yaml:"podSelector"`
	PolicyTypes []string      `yaml:"policyTypes"`
	Ingress     []struct {
		From []struct {
			NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
			PodSelector       *labelSelector `yaml:"podSelector"`
		} `yaml:"from"`
		Ports []struct {
			Port intOrString `yaml:"port"`
		} `yaml:"ports"`
	} `yaml:"ingress"`
}

type scaledObjectSpec struct {
	ScaleTargetRef struct {
		Kind string `yaml:"kind"`
		Name string `yaml:"name"`
	} `yaml:"scaleTargetRef"`
	MinReplicaCount *int `yaml:"minReplicaCount"`
	MaxReplicaCount *int `yaml:"maxReplicaCount"`
	CooldownPeriod  *int `yaml:"cooldownPeriod"`
	Advanced        struct {
		ScalingModifiers struct {
			Formula    string `yaml:"formula"`
			Target     string `yaml:"target"`
			MetricType string `yaml:"metricType"`
		} `yaml:"scalingModifiers"`
		HorizontalPodAutoscalerConfig struct {
			Behavior struct {
				ScaleDown struct {
					StabilizationWindowSeconds *int `yaml:"stabilizationWindowSeconds"`
					Policies                   []struct {
						Type          string `yaml:"type"`
						Value         int    `yaml:"value"`
						PeriodSeconds int    `yaml:"periodSeconds"`
					} `yaml:"policies"`
				} `yaml:"scaleDown"`
			} `yaml:"behavior"`
		} `yaml:"horizontalPodAutoscalerConfig"`
	} `yaml:"advanced"`
	Triggers []struct {
		Type     string            `yaml:"type"`
		Name     string            `yaml:"name"`
		Metadata map[string]string `yaml:"metadata"`
	} `yaml:"triggers"`
}

// loadObjects reads every object of every YAML file in dir.
func loadObjects(t *testing.T, dir string, files []string) []*k8sObject {
	t.Helper()
	var objs []*k8sObject
	for _, name := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			o := &k8sObject{file: name}
			if err := dec.Decode(o); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", name, err)
			}
			if o.Kind == "" {
				t.Fatalf("%s: an object without a kind", name)
			}
			objs = append(objs, o)
		}
		f.Close()
	}
	return objs
}

func decodeSpec(t *testing.T, o *k8sObject, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s: %s %s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
}

// kustomization reads dir's kustomization.yaml and checks that it lists
// every other YAML file of dir except those in unlisted.
func kustomization(t *testing.T, dir string, unlisted ...string) (resources []string, namespace string) {
	t.Helper()
	var k struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	var want []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".yaml") && n != "kustomization.yaml" && !slices.Contains(unlisted, n) {
			want = append(want, n)
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("%s/kustomization.yaml lists %v, want every manifest there %v", dir, got, want)
	}
	for _, n := range unlisted {
		if slices.Contains(k.Resources, n) {
			t.Errorf("%s/kustomization.yaml must not list %s", dir, n)
		}
	}
	return k.Resources, k.Namespace
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// A deployment is a Deployment with its linkflow process.
type deployment struct {
	obj  *k8sObject
	spec deploymentSpec
	c    container
	proc *process
	// ports maps the container's port names, and the numbers as strings, to
	// the numbers.
	ports map[string]int
}

func (d *deployment) resolve(p intOrString) (int, bool) { n, ok := d.ports[string(p)]; return n, ok }

type kubernetes struct {
	namespace   string
	objs        []*k8sObject
	deployments map[string]*deployment
	example     *k8sObject // secret.example.yaml's Secret
}

// loadKubernetes reads deploy/kubernetes and builds each Deployment's
// process, checking its role, flags and variables.
func loadKubernetes(t *testing.T) *kubernetes {
	t.Helper()
	dir := filepath.Join(deployDir, "kubernetes")
	resources, ns := kustomization(t, dir, "secret.example.yaml")
	k := &kubernetes{namespace: ns, objs: loadObjects(t, dir, resources), deployments: map[string]*deployment{}}
	for _, o := range loadObjects(t, dir, []string{"secret.example.yaml"}) {
		if o.Kind == "Secret" {
			k.example = o
		}
	}
	if k.example == nil {
		t.Fatal("deploy/kubernetes/secret.example.yaml has no Secret")
	}
	configMaps, secrets := map[string]*k8sObject{}, map[string]*k8sObject{k.example.Metadata.Name: k.example}
	for _, o := range k.objs {
		switch o.Kind {
		case "Namespace":
			if o.Metadata.Name != ns {
				t.Errorf("%s: Namespace %s, but kustomization.yaml's namespace is %s", o.file, o.Metadata.Name, ns)
			}
		case "ConfigMap":
			configMaps[o.Metadata.Name] = o
		case "Secret":
			t.Errorf("%s: a Secret among the applied manifests: secrets are created by the operator", o.file)
		}
		if o.Kind != "Namespace" && o.Metadata.Namespace != ns {
			t.Errorf("%s: %s %s is in namespace %q, want %q", o.file, o.Kind, o.Metadata.Name, o.Metadata.Namespace, ns)
		}
	}
	readers := map[string][]string{} // "ConfigMap/name" -> the roles reading it
	for _, o := range k.objs {
		if o.Kind != "Deployment" {
			continue
		}
		d := &deployment{obj: o, ports: map[string]int{}}
		decodeSpec(t, o, &d.spec)
		where := o.file + ": Deployment " + o.Metadata.Name
		if !d.spec.Selector.selects(d.spec.Template.Metadata.Labels) || len(d.spec.Selector.MatchLabels) == 0 {
			t.Errorf("%s: its selector does not select its own pods", where)
		}
		if len(d.spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: want one container, have %d", where, len(d.spec.Template.Spec.Containers))
		}
		d.c = d.spec.Template.Spec.Containers[0]
		// The environment as Kubernetes builds it: envFrom in order (a later
		// source wins), then env.
		env := map[string]string{}
		var sources []string
		for _, ef := range d.c.EnvFrom {
			if ef.Prefix != "" {
				t.Errorf("%s: envFrom with a prefix: linkflow reads LINKFLOW_* only", where)
			}
			var src *k8sObject
			var vars map[string]string
			switch {
			case ef.ConfigMapRef != nil:
				if src = configMaps[ef.ConfigMapRef.Name]; src != nil {
					vars = src.Data
				}
			case ef.SecretRef != nil:
				// The real Secret is the operator's; its keys are those of
				// secret.example.yaml.
				if src = secrets[ef.SecretRef.Name]; src != nil {
					vars = src.StringData
				}
			}
			if src == nil {
				t.Errorf("%s: envFrom names a ConfigMap or Secret that no manifest (nor secret.example.yaml) defines", where)
				continue
			}
			sources = append(sources, src.Kind+"/"+src.Metadata.Name)
			maps.Copy(env, vars)
		}
		own := map[string]string{}
		for _, e := range d.c.Env {
			if e.ValueFrom == nil {
				own[e.Name] = e.Value
			}
		}
		maps.Copy(env, own)
		// The container's own env holds strictly its role's variables; the
		// ConfigMaps and Secrets it reads are checked below, as shared.
		d.proc = newProcess(t, where, append(slices.Clone(d.c.Command), d.c.Args...), own)
		d.proc.env = env
		for _, key := range sources {
			readers[key] = append(readers[key], d.proc.role)
		}
		for _, p := range d.c.Ports {
			d.ports[strconv.Itoa(p.ContainerPort)] = p.ContainerPort
			if p.Name != "" {
				d.ports[p.Name] = p.ContainerPort
			}
		}
		k.deployments[o.Metadata.Name] = d
	}
	if len(k.deployments) == 0 {
		t.Fatal("deploy/kubernetes has no Deployment")
	}
	// ConfigMaps and Secrets are shared by the roles that read them.
	for name, o := range configMaps {
		checkSharedEnv(t, o.file+": ConfigMap "+name, o.Data, readers["ConfigMap/"+name])
	}
	for name, o := range secrets {
		checkSharedEnv(t, o.file+": Secret "+name, o.StringData, readers["Secret/"+name])
	}
	return k
}

// TestDeployKubernetes checks deploy/kubernetes against the binary and
// itself.
func TestDeployKubernetes(t *testing.T) {
	t.Parallel()
	k := loadKubernetes(t)
	image := composeImage(t)

	// secret.example.yaml is an example: marked so, and its values cannot
	// pass for real ones.
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "EXAMPLE ONLY") {
		t.Error("secret.example.yaml does not say it is an example")
	}
	if v, ok := k.example.StringData["LINKFLOW_ENCRYPTION_KEYS"]; !ok {
		t.Error("secret.example.yaml has no LINKFLOW_ENCRYPTION_KEYS")
	} else if _, err := store.ParseKeyring(v); err == nil {
		t.Error("secret.example.yaml holds a usable encryption key: examples hold placeholders only")
	}

	var pdbs []labelSelector
	var policies []networkPolicySpec
	type service struct {
		obj  *k8sObject
		spec serviceSpec
	}
	var services []service
	for _, o := range k.objs {
		switch o.Kind {
		case "PodDisruptionBudget":
			var s struct {
				Selector       labelSelector `yaml:"selector"`
				MinAvailable   *intOrString  `yaml:"minAvailable"`
				MaxUnavailable *intOrString  `yaml:"maxUnavailable"`
				Unhealthy      string        `yaml:"unhealthyPodEvictionPolicy"`
			}
			decodeSpec(t, o, &s)
			if (s.MinAvailable == nil) == (s.MaxUnavailable == nil) {
				t.Errorf("%s: PodDisruptionBudget %s: want one of minAvailable and maxUnavailable", o.file, o.Metadata.Name)
			}
			// During an outage of Redis or NATS every pod is not ready: a
			// budget that counts them would refuse every eviction, and
			// block node drains and rollouts until the outage ends.
			if s.Unhealthy != "AlwaysAllow" {
				t.Errorf("%s: PodDisruptionBudget %s: unhealthyPodEvictionPolicy %q, want AlwaysAllow", o.file, o.Metadata.Name, s.Unhealthy)
			}
			pdbs = append(pdbs, s.Selector)
		case "NetworkPolicy":
			var s networkPolicySpec
			decodeSpec(t, o, &s)
			policies = append(policies, s)
		case "Service":
			sv := service{obj: o}
			decodeSpec(t, o, &sv.spec)
			services = append(services, sv)
		}
	}

	for name, d := range k.deployments {
		where := d.obj.file + ": Deployment " + name
		labels := d.spec.Template.Metadata.Labels
		pod := d.spec.Template.Spec

		if d.c.Image != image {
			t.Errorf("%s: image %q, but compose builds deploy/Dockerfile as %q", where, d.c.Image, image)
		}
		checkTopology(t, d.proc)

		// Ports: the container's ports are the addresses the process
		// listens on.
		wantPorts := map[string]int{"metrics": d.proc.port(t, "metrics-addr")}
		healthPort := wantPorts["metrics"] // workers and dispatchers
		if d.proc.has(t, "http-addr") {
			wantPorts["http"] = d.proc.port(t, "http-addr")
			healthPort = wantPorts["http"] // the api serves them on its HTTP address
		}
		for pname, port := range wantPorts {
			if got, ok := d.ports[pname]; !ok || got != port {
				t.Errorf("%s: container port %q is %d, want %d (--%s-addr)", where, pname, got, port, pname)
			}
		}
		for _, p := range d.c.Ports {
			if !slices.Contains(slices.Collect(maps.Values(wantPorts)), p.ContainerPort) {
				t.Errorf("%s: container port %d is no address linkflow %s listens on", where, p.ContainerPort, d.proc.role)
			}
		}
		if ann := d.spec.Template.Metadata.Annotations["prometheus.io/port"]; ann != "" && ann != strconv.Itoa(wantPorts["metrics"]) {
			t.Errorf("%s: prometheus.io/port %s, but metrics are on %d", where, ann, wantPorts["metrics"])
		}

		// Probes: liveness /healthz, readiness /readyz, on the port that
		// serves them. The api's readiness is /healthz: an outage of Redis
		// or NATS fails every api's /readyz at once, and the Service would
		// have no endpoint left to answer linkflow's 503 with Retry-After
		// (docs/operations.md).
		ready := "/readyz"
		if d.proc.role == "api" {
			ready = "/healthz"
		}
		for _, pr := range []struct {
			kind, path string
			p          *probe
			required   bool
		}{
			{"livenessProbe", "/healthz", d.c.LivenessProbe, true},
			{"readinessProbe", ready, d.c.ReadinessProbe, true},
			{"startupProbe", "/healthz", d.c.StartupProbe, false},
		} {
			if pr.p == nil || pr.p.HTTPGet == nil {
				if pr.required {
					t.Errorf("%s: no HTTP %s", where, pr.kind)
				}
				continue
			}
			if pr.p.HTTPGet.Path != pr.path {
				t.Errorf("%s: %s on %s, want %s", where, pr.kind, pr.p.HTTPGet.Path, pr.path)
			}
			if got, ok := d.resolve(pr.p.HTTPGet.Port); !ok || got != healthPort {
				t.Errorf("%s: %s on port %q (%d), want %d", where, pr.kind, pr.p.HTTPGet.Port, got, healthPort)
			}
		}

		// Starting: the api listens only once Redis and NATS answer, which
		// it waits for up to --startup-timeout; a startup probe that gives
		// up first restarts it in a loop.
		if d.proc.role == "api" {
			wait, err := time.ParseDuration(d.proc.value(t, "startup-timeout"))
			if err != nil {
				t.Fatalf("%s: --startup-timeout: %v", where, err)
			}
			if d.c.StartupProbe == nil || d.c.StartupProbe.patience() <= wait {
				t.Errorf("%s: a startup probe that gives up before --startup-timeout (%v)", where, wait)
			}
		}

		// Stopping: Kubernetes must not kill the process before it has
		// finished or handed back its work.
		tgps := 30 // Kubernetes' default
		if pod.TerminationGracePeriodSeconds != nil {
			tgps = *pod.TerminationGracePeriodSeconds
		}
		need := d.proc.stopNeeds(t) + time.Duration(d.c.Lifecycle.PreStop.Sleep.Seconds)*time.Second
		if time.Duration(tgps)*time.Second <= need {
			t.Errorf("%s: terminationGracePeriodSeconds %d, but linkflow %s may need %v to stop", where, tgps, d.proc.role, need)
		}

		// Resources and security.
		for _, r := range []string{"cpu", "memory"} {
			if d.c.Resources.Requests[r] == "" {
				t.Errorf("%s: no %s request", where, r)
			}
		}
		if d.c.Resources.Limits["memory"] == "" {
			t.Errorf("%s: no memory limit", where)
		}
		checkSecurity(t, where, pod.SecurityContext, d.c.SecurityContext)
		if !slices.ContainsFunc(pdbs, func(s labelSelector) bool { return len(s.MatchLabels) > 0 && s.selects(labels) }) {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", where)
		}

		// Services: the metrics port of every role has one (Prometheus), and
		// the api's HTTP port.
		for pname, port := range wantPorts {
			if !slices.ContainsFunc(services, func(sv service) bool {
				return len(sv.spec.Selector) > 0 && (labelSelector{sv.spec.Selector}).selects(labels) &&
					slices.ContainsFunc(sv.spec.Ports, func(sp servicePort) bool {
						n, ok := d.resolve(sp.TargetPort)
						return ok && n == port
					})
			}) {
				t.Errorf("%s: no Service reaches its %s port %d", where, pname, port)
			}
		}

		// NetworkPolicy: some policy selects the pods (so that ingress is
		// restricted), and the metrics port admits only the monitoring
		// namespace.
		selected := false
		for _, np := range policies {
			if !np.PodSelector.selects(labels) {
				continue
			}
			selected = true
			for _, rule := range np.Ingress {
				for _, rp := range rule.Ports {
					n, ok := d.resolve(rp.Port)
					if !ok {
						t.Errorf("%s: a NetworkPolicy selecting it admits port %q, which it does not have", where, rp.Port)
						continue
					}
					if n != wantPorts["metrics"] {
						continue
					}
					for _, from := range rule.From {
						if from.NamespaceSelector == nil || from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
							t.Errorf("%s: a NetworkPolicy admits the metrics port (pprof) from outside the monitoring namespace", where)
						}
					}
					if len(rule.From) == 0 {
						t.Errorf("%s: a NetworkPolicy admits the metrics port (pprof) from everywhere", where)
					}
				}
			}
		}
		if !selected {
			t.Errorf("%s: no NetworkPolicy selects its pods", where)
		}
	}

	// Every Service reaches a Deployment's ports.
	for _, sv := range services {
		o, s := sv.obj, sv.spec
		matched := false
		for _, d := range k.deployments {
			if len(s.Selector) == 0 || !(labelSelector{s.Selector}).selects(d.spec.Template.Metadata.Labels) {
				continue
			}
			matched = true
			for _, sp := range s.Ports {
				if _, ok := d.resolve(sp.TargetPort); !ok {
					t.Errorf("%s: Service %s: targetPort %q is no port of Deployment %s", o.file, o.Metadata.Name, sp.TargetPort, d.obj.Metadata.Name)
				}
			}
		}
		if !matched {
			t.Errorf("%s: Service %s selects no Deployment's pods", o.file, o.Metadata.Name)
		}
	}

	// The api's probe paths are routes the API registers: the api package's
	// OpenAPI test holds api/openapi.yaml and the registered routes equal.
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	readYAML(t, filepath.Join(repoRoot, "api", "openapi.yaml"), &doc)
	for _, p := range []string{"/healthz", "/readyz"} {
		if _, ok := doc.Paths[p]["get"]; !ok {
			t.Errorf("api/openapi.yaml has no GET %s, which the api's probes use", p)
		}
	}
}

// checkSecurity checks the pod's and container's security contexts
// together (the container's settings win).
func checkSecurity(t *testing.T, where string, pod, c securityContext) {
	t.Helper()
	isTrue := func(vs ...*bool) bool {
		for _, v := range vs {
			if v != nil {
				return *v
			}
		}
		return false
	}
	if !isTrue(c.RunAsNonRoot, pod.RunAsNonRoot) {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	for _, u := range []*int64{c.RunAsUser, pod.RunAsUser} {
		if u != nil && *u == 0 {
			t.Errorf("%s: runAsUser 0", where)
		}
	}
	if !isTrue(c.ReadOnlyRootFilesystem) {
		t.Errorf("%s: readOnlyRootFilesystem is not true", where)
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", where)
	}
	if !slices.Contains(c.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities do not drop ALL", where)
	}
	if seccomp := cmpOr(c.SeccompProfile.Type, pod.SeccompProfile.Type); seccomp != "RuntimeDefault" {
		t.Errorf("%s: seccompProfile %q, want RuntimeDefault", where, seccomp)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// --- KEDA -------------------------------------------------------------------

// kedaMetadata are the nats-jetstream trigger's documented metadata fields
// (keda.sh/docs/scalers/nats-jetstream); the first five are required here.
var kedaMetadata = []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold",
	"activationLagThreshold", "useHttps"}

// TestDeployKEDA checks that the ScaledObjects scale existing Deployments
// on consumers linkflow creates.
func TestDeployKEDA(t *testing.T) {
	t.Parallel()
	k := loadKubernetes(t)
	dir := filepath.Join(deployDir, "kubernetes", "keda")
	resources, ns := kustomization(t, dir)
	if ns != k.namespace {
		t.Errorf("keda/kustomization.yaml: namespace %q, want %q", ns, k.namespace)
	}
	conf := natsConf(t)
	scaled := map[string]bool{}
	for _, o := range loadObjects(t, dir, resources) {
		where := "keda/" + o.file + ": " + o.Kind + " " + o.Metadata.Name
		if o.Kind != "ScaledObject" || o.APIVersion != "keda.sh/v1alpha1" {
			t.Errorf("%s (%s): want keda.sh/v1alpha1 ScaledObjects only", where, o.APIVersion)
			continue
		}
		var s scaledObjectSpec
		decodeSpec(t, o, &s)
		d := k.deployments[s.ScaleTargetRef.Name]
		if d == nil || (s.ScaleTargetRef.Kind != "" && s.ScaleTargetRef.Kind != "Deployment") {
			t.Errorf("%s: scaleTargetRef %s %q is no Deployment in deploy/kubernetes", where, s.ScaleTargetRef.Kind, s.ScaleTargetRef.Name)
			continue
		}
		scaled[d.proc.role] = true
		// Never to zero: the worker runs the sweeper, and the dispatcher
		// sends retries due in Redis; neither shows in a consumer's backlog.
		if s.MinReplicaCount == nil || *s.MinReplicaCount < 1 {
			t.Errorf("%s: minReplicaCount must be at least 1", where)
		}
		if s.MaxReplicaCount == nil || s.MinReplicaCount == nil || *s.MaxReplicaCount < *s.MinReplicaCount {
			t.Errorf("%s: maxReplicaCount must be set and at least minReplicaCount", where)
		}
		// KEDA's cooldownPeriod applies only to scaling to zero: how fast
		// replicas go (each worker that goes hands its sessions back) is
		// the HPA's scaleDown behavior.
		if s.CooldownPeriod != nil {
			t.Errorf("%s: cooldownPeriod does nothing without scaling to zero; set advanced.horizontalPodAutoscalerConfig.behavior.scaleDown", where)
		}
		if down := s.Advanced.HorizontalPodAutoscalerConfig.Behavior.ScaleDown; down.StabilizationWindowSeconds == nil || len(down.Policies) == 0 {
			t.Errorf("%s: no scaleDown behavior (stabilization window and policies): the HPA may remove every surplus replica at once", where)
		}

		var wantStream string
		var wantConsumers []string
		switch d.proc.role {
		case "worker":
			wantStream = outbox.StreamLinks
			integrations := splitList(d.proc.value(t, "integrations"))
			if len(integrations) == 0 { // every integration the worker registers
				if d.proc.value(t, "sandbox") == "true" {
					integrations = sandbox.IntegrationIDs()
				}
				if d.proc.value(t, "remote-providers") != "" {
					t.Errorf("%s: remote providers' integrations cannot be checked here; list them with --integrations", where)
				}
			}
			for _, i := range integrations {
				wantConsumers = append(wantConsumers, outbox.WorkerConsumer(i))
			}
		case "dispatcher":
			wantStream, wantConsumers = outbox.StreamEvents, []string{outbox.DispatcherConsumer}
		default:
			t.Errorf("%s: scales linkflow %s, which consumes nothing", where, d.proc.role)
			continue
		}
		var consumers []string
		for i, tr := range s.Triggers {
			tw := where + " trigger " + strconv.Itoa(i)
			if tr.Type != "nats-jetstream" {
				t.Errorf("%s: type %q, want nats-jetstream", tw, tr.Type)
				continue
			}
			for key := range tr.Metadata {
				if !slices.Contains(kedaMetadata, key) {
					t.Errorf("%s: %q is no metadata field of KEDA's nats-jetstream scaler", tw, key)
				}
			}
			for _, key := range kedaMetadata[:5] {
				if tr.Metadata[key] == "" {
					t.Errorf("%s: no %s", tw, key)
				}
			}
			// host:port: KEDA adds the scheme and /jsz itself.
			ep := tr.Metadata["natsServerMonitoringEndpoint"]
			if _, port, err := net.SplitHostPort(ep); err != nil || strings.Contains(ep, "/") || port != strconv.Itoa(conf.HTTPPort) {
				t.Errorf("%s: natsServerMonitoringEndpoint %q: want host:%d (NATS's monitoring port, no scheme or path)", tw, ep, conf.HTTPPort)
			}
			if tr.Metadata["account"] != "$G" {
				t.Errorf("%s: account %q, want $G (NATS without accounts)", tw, tr.Metadata["account"])
			}
			if n, err := strconv.Atoi(tr.Metadata["lagThreshold"]); err != nil || n < 1 {
				t.Errorf("%s: lagThreshold %q: want a positive integer", tw, tr.Metadata["lagThreshold"])
			}
			if tr.Metadata["stream"] != wantStream {
				t.Errorf("%s: stream %q, but linkflow %s consumes %s", tw, tr.Metadata["stream"], d.proc.role, wantStream)
			}
			// KEDA counts a consumer it cannot find as the stream's whole
			// history: a wrong name scales to the maximum.
			if c := tr.Metadata["consumer"]; !slices.Contains(wantConsumers, c) {
				t.Errorf("%s: consumer %q does not exist; linkflow %s consumes %v", tw, c, d.proc.role, wantConsumers)
			}
			consumers = append(consumers, tr.Metadata["consumer"])
		}
		slices.Sort(consumers)
		slices.Sort(wantConsumers)
		if !slices.Equal(consumers, wantConsumers) {
			t.Errorf("%s: triggers on %v, want one per consumer %v", where, consumers, wantConsumers)
		}
		// One worker's sessions serve every integration: its replicas follow
		// the sum of its triggers (the HPA alone follows the largest), one
		// per target, which is below the sessions a worker runs.
		if d.proc.role == "worker" && len(s.Triggers) > 1 {
			var names, terms []string
			for _, tr := range s.Triggers {
				names = append(names, tr.Name)
			}
			m := s.Advanced.ScalingModifiers
			for _, term := range strings.Split(m.Formula, "+") {
				terms = append(terms, strings.TrimSpace(term))
			}
			slices.Sort(names)
			slices.Sort(terms)
			ident := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) // the formula reads "a-b" as a minus
			if !slices.Equal(names, terms) || slices.ContainsFunc(names, func(n string) bool { return !ident.MatchString(n) }) {
				t.Errorf("%s: scalingModifiers formula %q, want the sum of every trigger, each named with letters, digits and _ (%v)", where, m.Formula, names)
			}
			target, err := strconv.Atoi(m.Target)
			concurrency, cerr := strconv.Atoi(d.proc.value(t, "concurrency"))
			if err != nil || cerr != nil || target < 1 || target > concurrency || (m.MetricType != "" && m.MetricType != "AverageValue") {
				t.Errorf("%s: scalingModifiers target %q (%s): want an AverageValue from 1 to the worker's --concurrency %s", where, m.Target, m.MetricType, d.proc.value(t, "concurrency"))
			}
		}
	}
	for _, role := range []string{"worker", "dispatcher"} {
		if !scaled[role] {
			t.Errorf("no ScaledObject scales the %s Deployment", role)
		}
	}
}

// --- compose, NATS, Redis ---------------------------------------------------

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command         []string       `yaml:"command"`
	EnvFile         any            `yaml:"env_file"`
	Environment     any            `yaml:"environment"`
	Ports           []string       `yaml:"ports"`
	Volumes         []string       `yaml:"volumes"`
	DependsOn       map[string]any `yaml:"depends_on"`
	StopGracePeriod string         `yaml:"stop_grace_period"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, filepath.Join(deployDir, "compose.yaml"), &c)
	if len(c.Services) == 0 {
		t.Fatal("deploy/compose.yaml has no services")
	}
	return c
}

// composeImage is the image name compose gives deploy/Dockerfile's build.
func composeImage(t *testing.T) string {
	t.Helper()
	images := map[string]bool{}
	for name, s := range loadCompose(t).Services {
		if s.Build == nil {
			continue
		}
		df := filepath.Join(deployDir, s.Build.Context, cmpOr(s.Build.Dockerfile, "Dockerfile"))
		if filepath.Clean(df) != filepath.Join(deployDir, "Dockerfile") {
			t.Errorf("compose.yaml: %s builds %s, not deploy/Dockerfile", name, df)
		}
		if s.Image == "" {
			t.Errorf("compose.yaml: %s builds deploy/Dockerfile without naming the image", name)
		}
		images[s.Image] = true
	}
	if len(images) != 1 {
		t.Fatalf("compose.yaml builds deploy/Dockerfile as %d image names, want 1: %v", len(images), images)
	}
	for image := range images {
		return image
	}
	return ""
}

// readEnvFile reads KEY=VALUE lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s:%d: not KEY=VALUE", path, i+1)
			continue
		}
		vars[k] = v
	}
	return vars
}

// envMap reads compose's environment, a map or a list of KEY=VALUE.
func envMap(t *testing.T, where string, v any) map[string]string {
	out := map[string]string{}
	switch e := v.(type) {
	case nil:
	case map[string]any:
		for k, val := range e {
			if val == nil {
				val = ""
			}
			s, ok := val.(string)
			if !ok {
				t.Errorf("%s: environment %s is not a string (quote it)", where, k)
			}
			out[k] = s
		}
	case []any:
		for _, item := range e {
			k, val, _ := strings.Cut(item.(string), "=")
			out[k] = val
		}
	default:
		t.Errorf("%s: environment of type %T", where, v)
	}
	return out
}

// natsConfig parses deploy/nats-cluster.conf with the NATS server's own
// parser, as node nats-1.
var natsConfig = sync.OnceValues(func() (*server.Options, error) {
	os.Setenv("NATS_SERVER_NAME", "nats-1")
	defer os.Unsetenv("NATS_SERVER_NAME")
	return server.ProcessConfigFile(filepath.Join(deployDir, "nats-cluster.conf"))
})

func natsConf(t *testing.T) *server.Options {
	t.Helper()
	o, err := natsConfig()
	if err != nil {
		t.Fatalf("deploy/nats-cluster.conf: %v", err)
	}
	return o
}

// envExample is the env file shared by every role of compose.yaml and the
// systemd units.
const envExample = "linkflow.env.example"

// TestDeployCompose checks compose.yaml: linkflow's services against the
// binary, and the NATS and Redis clusters against what linkflow is told.
func TestDeployCompose(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	image := composeImage(t)
	shared := readEnvFile(t, filepath.Join(deployDir, envExample))
	conf := natsConf(t)

	// The clusters: NATS servers, Redis Cluster nodes and the one-shot
	// service that forms the Redis Cluster.
	var natsServices, redisNodes, initNodes []string
	redisInit := ""
	for name, s := range c.Services {
		env := envMap(t, "compose.yaml: "+name, s.Environment)
		args := strings.Join(s.Command, " ")
		switch {
		case strings.HasPrefix(s.Image, "nats:"):
			natsServices = append(natsServices, name)
			if env["NATS_SERVER_NAME"] != name {
				t.Errorf("compose.yaml: %s: NATS_SERVER_NAME %q, want its service name (the host its routes use)", name, env["NATS_SERVER_NAME"])
			}
			if !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasPrefix(v, "./nats-cluster.conf:") }) {
				t.Errorf("compose.yaml: %s does not mount nats-cluster.conf", name)
			}
		case strings.Contains(args, "--cluster-enabled"):
			for _, want := range []string{"--cluster-enabled yes", "--appendonly yes", "--appendfsync everysec"} {
				if !strings.Contains(args, want) {
					t.Errorf("compose.yaml: Redis node %s runs without %s", name, want)
				}
			}
			port := "6379"
			if i := slices.Index(s.Command, "--port"); i >= 0 && i+1 < len(s.Command) {
				port = s.Command[i+1]
			}
			redisNodes = append(redisNodes, net.JoinHostPort(name, port))
		case strings.Contains(args, "redis-cluster-init.sh"):
			redisInit, initNodes = name, strings.Fields(env["REDIS_NODES"])
		}
	}
	slices.Sort(natsServices)
	slices.Sort(redisNodes)
	if len(natsServices) != 3 || len(redisNodes) != 3 {
		t.Errorf("compose.yaml: NATS servers %v and Redis Cluster nodes %v: want 3 of each", natsServices, redisNodes)
	}
	if got := slices.Sorted(slices.Values(initNodes)); redisInit == "" || !slices.Equal(got, redisNodes) {
		t.Errorf("compose.yaml: redis-init (%q) forms %v, but the Redis Cluster nodes are %v", redisInit, got, redisNodes)
	}

	// linkflow's services.
	var roles []string
	for name, s := range c.Services {
		if s.Image != image && s.Build == nil {
			continue
		}
		where := "compose.yaml: " + name
		if s.Image != image {
			t.Errorf("%s: image %q, want %q", where, s.Image, image)
		}
		if files := envFiles(s.EnvFile); !slices.Equal(files, []string{envExample}) {
			t.Errorf("%s: env_file %v, want [%s]", where, files, envExample)
		}
		// environment is the service's own: strictly its role's variables
		// (the env file is shared, checked by checkEnvExample).
		env := envMap(t, where, s.Environment)
		p := newProcess(t, where, s.Command, env)
		p.env = maps.Clone(shared)
		maps.Copy(p.env, env)
		roles = append(roles, p.role)
		for k, v := range env {
			if secretName(k) && v != "" && !strings.HasPrefix(v, "${") {
				t.Errorf("%s: %s is written in compose.yaml: take secrets from the environment (${%s})", where, k, k)
			}
		}

		natsHosts, redisHosts := checkTopology(t, p)
		var hosts []string
		for _, h := range natsHosts {
			host, port, _ := net.SplitHostPort(h)
			hosts = append(hosts, host)
			if port != strconv.Itoa(conf.Port) {
				t.Errorf("%s: NATS URL %s, but nats-cluster.conf listens on %d", where, h, conf.Port)
			}
		}
		if got := slices.Sorted(slices.Values(hosts)); !slices.Equal(got, natsServices) {
			t.Errorf("%s: LINKFLOW_NATS_URL names %v, but the NATS services are %v", where, got, natsServices)
		}
		if got := slices.Sorted(slices.Values(redisHosts)); !slices.Equal(got, redisNodes) {
			t.Errorf("%s: LINKFLOW_REDIS_URL lists %v, but the Redis Cluster nodes are %v", where, got, redisNodes)
		}
		// linkflow exits when NATS or Redis is missing at start: it waits
		// for healthy NATS servers and a formed Redis Cluster.
		for _, dep := range natsServices {
			if cond := dependsOn(s, dep); cond != "service_healthy" {
				t.Errorf("%s: does not wait for %s to be healthy (depends_on condition %q)", where, dep, cond)
			}
		}
		if cond := dependsOn(s, redisInit); cond != "service_completed_successfully" {
			t.Errorf("%s: does not wait for redis-init to form the Redis Cluster (depends_on condition %q)", where, cond)
		}

		// Only the API's port is published; metrics and pprof stay on the
		// compose network.
		for _, pm := range s.Ports {
			parts := strings.Split(pm, ":")
			target, err := strconv.Atoi(parts[len(parts)-1])
			if err != nil {
				t.Errorf("%s: port mapping %q", where, pm)
				continue
			}
			if !p.has(t, "http-addr") || target != p.port(t, "http-addr") {
				t.Errorf("%s: publishes container port %d, which is not its --http-addr", where, target)
			}
		}
		if p.has(t, "http-addr") && len(s.Ports) == 0 {
			t.Errorf("%s: the api publishes no port", where)
		}
		p.port(t, "metrics-addr") // not loopback: Prometheus scrapes it over the network
		grace, err := time.ParseDuration(cmpOr(s.StopGracePeriod, "10s"))
		if err != nil || grace <= p.stopNeeds(t) {
			t.Errorf("%s: stop_grace_period %q, but linkflow %s may need %v to stop", where, s.StopGracePeriod, p.role, p.stopNeeds(t))
		}
	}
	for _, role := range []string{"api", "worker", "dispatcher"} {
		if !slices.Contains(roles, role) {
			t.Errorf("compose.yaml runs no %s", role)
		}
	}

	// nats-cluster.conf: JetStream, the monitoring port KEDA reads, and a
	// route to every NATS service.
	if !conf.JetStream || conf.ServerName != "nats-1" {
		t.Errorf("nats-cluster.conf: JetStream %v, server_name %q: want JetStream and the name from NATS_SERVER_NAME", conf.JetStream, conf.ServerName)
	}
	if conf.HTTPPort != 8222 {
		t.Errorf("nats-cluster.conf: monitoring port %d, want 8222 (KEDA's convention)", conf.HTTPPort)
	}
	var routes []string
	for _, r := range conf.Routes {
		routes = append(routes, r.Hostname())
		if r.Port() != strconv.Itoa(conf.Cluster.Port) {
			t.Errorf("nats-cluster.conf: route %s, but the cluster listens on %d", r, conf.Cluster.Port)
		}
	}
	if got := slices.Sorted(slices.Values(routes)); !slices.Equal(got, natsServices) {
		t.Errorf("nats-cluster.conf routes to %v, want every NATS service %v", got, natsServices)
	}

	checkEnvExample(t, shared, roles)
}

// dependsOn is the condition s waits for dep with ("" when it does not).
func dependsOn(s composeService, dep string) string {
	v, ok := s.DependsOn[dep]
	if !ok {
		return ""
	}
	m, _ := v.(map[string]any)
	cond, _ := m["condition"].(string)
	return cmpOr(cond, "service_started")
}

func envFiles(v any) []string {
	switch f := v.(type) {
	case string:
		return []string{f}
	case []any:
		var out []string
		for _, item := range f {
			switch i := item.(type) {
			case string:
				out = append(out, i)
			case map[string]any:
				p, _ := i["path"].(string)
				out = append(out, p)
			}
		}
		return out
	}
	return nil
}

// secretName says whether a variable holds a secret.
func secretName(k string) bool {
	return strings.HasSuffix(k, "_KEYS") || strings.Contains(k, "TOKEN") || strings.Contains(k, "SECRET") || strings.Contains(k, "PASSWORD")
}

// checkEnvExample checks the shared env file: every variable is a flag of
// a role that reads it, it sets no secret, and it sets no metrics address,
// which would be the same for every role of one host and make them collide.
func checkEnvExample(t *testing.T, vars map[string]string, roles []string) {
	t.Helper()
	checkSharedEnv(t, envExample, vars, slices.Compact(slices.Sorted(slices.Values(roles))))
	for k, v := range vars {
		if secretName(k) && v != "" {
			t.Errorf("%s: %s has a value: an example holds no secret", envExample, k)
		}
	}
	if _, ok := vars["LINKFLOW_METRICS_ADDR"]; ok {
		t.Errorf("%s sets LINKFLOW_METRICS_ADDR for every role: roles sharing a host would collide on it", envExample)
	}
}

// --- systemd ----------------------------------------------------------------

// TestDeploySystemd checks the units' commands and stop timeouts.
func TestDeploySystemd(t *testing.T) {
	t.Parallel()
	units, err := filepath.Glob(filepath.Join(deployDir, "systemd", "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no systemd units: %v", err)
	}
	var roles []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		where := "systemd/" + filepath.Base(u)
		var execStart []string
		stop := 90 * time.Second // systemd's default
		// Hardening every unit keeps: an unprivileged user, no
		// capabilities, the host's file system read-only, only the
		// network's address families and the system calls of a service.
		for _, want := range []string{"DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
			"CapabilityBoundingSet=\n", "PrivateDevices=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
			"SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: no %s", where, strings.TrimSpace(want))
			}
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
				execStart = strings.Fields(strings.ReplaceAll(v, "%i", "9191")) // an instance name
			}
			if v, ok := strings.CutPrefix(line, "TimeoutStopSec="); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Errorf("%s: TimeoutStopSec=%s", where, v)
				}
				stop = time.Duration(n) * time.Second
			}
			if v, ok := strings.CutPrefix(line, "EnvironmentFile="); ok && v != "/etc/linkflow/linkflow.env" {
				t.Errorf("%s: EnvironmentFile=%s, want /etc/linkflow/linkflow.env (a copy of %s)", where, v, envExample)
			}
		}
		if len(execStart) == 0 || filepath.Base(execStart[0]) != "linkflow" {
			t.Errorf("%s: ExecStart does not run linkflow", where)
			continue
		}
		p := newProcess(t, where, execStart, nil)
		roles = append(roles, p.role)
		if stop <= p.stopNeeds(t) {
			t.Errorf("%s: TimeoutStopSec %v, but linkflow %s may need %v to stop", where, stop, p.role, p.stopNeeds(t))
		}
		// Several instances of a template unit on one host need a metrics
		// address each.
		if strings.Contains(filepath.Base(u), "@") && !strings.Contains(string(b), "--metrics-addr 127.0.0.1:%i") {
			t.Errorf("%s: instances share one metrics address", where)
		}
	}
	checkEnvExample(t, readEnvFile(t, filepath.Join(deployDir, envExample)), roles)
}

// --- Grafana ----------------------------------------------------------------

var (
	metricDef  = regexp.MustCompile(`prometheus\.New(Counter|CounterVec|Gauge|GaugeVec|Histogram|HistogramVec|Summary|SummaryVec)\(\s*prometheus\.\w+Opts\{\s*Name:\s*"(linkflow_[a-z0-9_]+)"`)
	metricName = regexp.MustCompile(`Name:\s*"(linkflow_[a-z0-9_]+)"`)
)

// linkflowMetrics are the series linkflow's Go sources define today
// (histograms and summaries with their _bucket, _sum and _count).
func linkflowMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		defs := metricDef.FindAllStringSubmatch(string(b), -1)
		if n := len(metricName.FindAllString(string(b), -1)); n != len(defs) {
			t.Errorf("%s defines %d linkflow_ metrics in a form this test does not read (it reads %d)", path, n, len(defs))
		}
		for _, m := range defs {
			names[m[2]] = true
			if strings.HasPrefix(m[1], "Histogram") || strings.HasPrefix(m[1], "Summary") {
				names[m[2]+"_sum"], names[m[2]+"_count"] = true, true
			}
			if strings.HasPrefix(m[1], "Histogram") {
				names[m[2]+"_bucket"] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no linkflow_ metrics found in the sources")
	}
	return names
}

// collectorMetrics are the series of the Go runtime and process collectors
// every role registers (cmd/linkflow connect).
func collectorMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		names[n+"_sum"], names[n+"_count"], names[n+"_bucket"] = true, true, true
	}
	return names
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promBraces    = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVariables = regexp.MustCompile(`\$\{?\w+\}?`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords  = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}
	labelValues   = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// promMetrics returns the metric names a PromQL expression selects: what is
// left once strings, label matchers, ranges, groupings, functions and
// keywords are taken out.
func promMetrics(expr string) []string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	s := promVariables.ReplaceAllString(expr, "")
	s = promStrings.ReplaceAllString(s, "")
	s = promBraces.ReplaceAllString(s, "")
	s = promGrouping.ReplaceAllString(s, "")
	var out []string
	for _, m := range promIdent.FindAllStringSubmatch(s, -1) {
		if m[1] != "" || slices.Contains(promKeywords, strings.ToLower(m[0])) {
			continue // a function or aggregation, or a keyword
		}
		out = append(out, m[0])
	}
	return out
}

// TestDeployDashboard checks that the dashboard parses, queries through
// its datasource variable, and uses only metrics that exist.
func TestDeployDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "linkflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Name       string `json:"name"`
				Query      any    `json:"query"`
				Definition string `json:"definition"`
				Datasource *struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/linkflow.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatal("grafana/linkflow.json: want a title, a uid and panels")
	}
	// linkflow's processes are picked out of their jobs by go_build_info,
	// whose path is the main module's.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	module := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(gomod), "\n", 2)[0], "module"))
	if want := `go_build_info{path=\"` + module + `\"}`; strings.Count(string(b), want) < 7 {
		t.Errorf("grafana/linkflow.json: the job variable and the process panels do not all select %s", want)
	}
	dsVar := ""
	var exprs []string
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = "${" + v.Name + "}"
		}
	}
	if dsVar == "" {
		t.Fatal("grafana/linkflow.json: no Prometheus datasource variable")
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || v.Datasource.UID != dsVar {
			t.Errorf("variable %s: not on the datasource variable %s", v.Name, dsVar)
		}
		exprs = append(exprs, v.Definition)
	}
	known := linkflowMetrics(t)
	for n := range collectorMetrics(t) {
		known[n] = true
	}
	type datasource struct {
		UID string `json:"uid"`
	}
	type target struct {
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	}
	type panel struct {
		Type       string      `json:"type"`
		Title      string      `json:"title"`
		Panels     []panel     `json:"panels"`
		Targets    []target    `json:"targets"`
		Datasource *datasource `json:"datasource"`
	}
	var panels []panel
	for _, raw := range dash.Panels {
		var p panel
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		panels = append(panels, p)
		panels = append(panels, p.Panels...) // collapsed rows
	}
	for _, p := range panels {
		if len(p.Targets) > 0 && (p.Datasource == nil || p.Datasource.UID != dsVar) {
			t.Errorf("panel %q: not on the datasource variable %s", p.Title, dsVar)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != dsVar {
				t.Errorf("panel %q: a query not through the datasource variable %s", p.Title, dsVar)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	used := 0
	queried := map[string]bool{}
	for _, e := range exprs {
		for _, m := range promMetrics(e) {
			used++
			queried[m] = true
			if !known[m] {
				t.Errorf("grafana/linkflow.json: %q uses %s, which linkflow does not export", e, m)
			}
		}
	}
	// The backlog is what an operator watches first (issue 14).
	for _, m := range []string{"linkflow_consumer_pending", "linkflow_consumer_ack_pending", "linkflow_outbox_entries",
		"linkflow_outbox_oldest_seconds", "linkflow_dead_letters", "linkflow_webhook_retry_overdue_seconds"} {
		if !queried[m] {
			t.Errorf("grafana/linkflow.json shows no %s", m)
		}
	}
	if used == 0 {
		t.Error("grafana/linkflow.json queries no metric")
	}
}

// TestDeployPromMetrics checks the PromQL reading the dashboard test relies
// on.
func TestDeployPromMetrics(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		expr string
		want []string
	}{
		{`sum by (status) (rate(linkflow_worker_links_finished_total{job=~"$job",status="failed"}[$__rate_interval]))`,
			[]string{"linkflow_worker_links_finished_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on(instance) group_left b`, []string{"a_bucket", "b"}},
		{`max(x) or vector(0)`, []string{"x"}},
		{`label_values(go_goroutines, job)`, []string{"go_goroutines"}},
		{`sum(rate(x[5m])) by (code) > bool 2`, []string{"x"}},
	} {
		if got := promMetrics(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("promMetrics(%q) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}
