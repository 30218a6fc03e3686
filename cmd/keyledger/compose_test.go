package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// repoRoot is the module root, relative to this package's directory.
var repoRoot = filepath.Join("..", "..")

// composeFile is the part of the Compose specification that
// docker-compose.yml uses. Decoding is strict: a key not listed here fails
// the test (a misspelt depends_on would otherwise be ignored by this test
// and by older Compose versions alike). Add a field when the file needs one.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	// Extensions are the top-level x-* keys (YAML anchors).
	Extensions map[string]any `yaml:",inline"`
}

type composeService struct {
	Image           string                       `yaml:"image"`
	Build           string                       `yaml:"build"`
	PullPolicy      string                       `yaml:"pull_policy"`
	Command         []string                     `yaml:"command"`
	Environment     map[string]string            `yaml:"environment"`
	Ports           []string                     `yaml:"ports"`
	Volumes         []string                     `yaml:"volumes"`
	DependsOn       map[string]composeDependency `yaml:"depends_on"`
	Healthcheck     *composeHealthcheck          `yaml:"healthcheck"`
	Restart         string                       `yaml:"restart"`
	StopGracePeriod string                       `yaml:"stop_grace_period"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

// deployment is docker-compose.yml and the Dockerfile, parsed and
// classified.
type deployment struct {
	file       composeFile
	dockerfile *dockerfile
	// ledger and validators run this binary; natsNodes run nats-server.
	// setup is the one-shot that creates the stream and its buckets with
	// the operator's credentials, before the ledger starts with its own.
	setup      *keyledgerService
	ledger     *keyledgerService
	validators []*keyledgerService
	natsNodes  []*natsService
	// init is the one-shot service that runs keyledger init; volumeDirs
	// are the named volumes it fills, each a directory on this machine
	// holding what init wrote there (run by this test from its command).
	init       *initService
	volumeDirs map[string]string
}

// initService is the compose service that runs `keyledger init`.
type initService struct {
	name string
	svc  composeService
	cfg  initConfig
	root string // the container's / on this machine
}

// keyledgerService is a compose service that runs `keyledger serve` or
// `keyledger validator`, its command line parsed by the binary's flags.
type keyledgerService struct {
	name  string
	svc   composeService
	serve *app.ServeConfig // for serve
	setup *app.ServeConfig // for setup
	node  *app.NodeConfig  // for validator
	// health is the service's health check command (after the binary),
	// parsed by the healthcheck subcommand's flags.
	health     []string
	healthConf HealthcheckConfig
}

func (k *keyledgerService) httpAddr() string {
	if k.serve != nil {
		return k.serve.HTTPAddr
	}
	return k.node.HTTPAddr
}

func (k *keyledgerService) natsCreds() string {
	if k.setup != nil {
		return k.setup.NATSClient.Creds
	}
	if k.serve != nil {
		return k.serve.NATSClient.Creds
	}
	return k.node.NATSClient.Creds
}

func (k *keyledgerService) natsURL() string {
	if k.setup != nil {
		return k.setup.NATSURL
	}
	if k.serve != nil {
		return k.serve.NATSURL
	}
	return k.node.NATSURL
}

// natsService is a compose service that runs nats-server, with the options
// its command line and config file produce.
type natsService struct {
	name string
	svc  composeService
	opts *server.Options
	// configFile is the config file on this machine, configPath in the
	// container.
	configFile, configPath string
}

func loadDeployment(t *testing.T) *deployment {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return parseDeployment(t, data)
}

func parseDeployment(t *testing.T, data []byte) *deployment {
	t.Helper()
	d := &deployment{dockerfile: loadDockerfile(t)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d.file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for key := range d.file.Extensions {
		if !strings.HasPrefix(key, "x-") {
			t.Errorf("docker-compose.yml: unknown top-level key %q", key)
		}
	}
	if len(d.file.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	for _, name := range apptest.SortedKeys(d.file.Services) {
		if svc := d.file.Services[name]; svc.Build != "" && len(svc.Command) > 0 && svc.Command[0] == "init" {
			if d.init != nil {
				t.Fatalf("services %s and %s both run init", d.init.name, name)
			}
			d.init = runInitService(t, name, svc)
			d.volumeDirs = d.init.volumeDirs(t)
		}
	}
	if d.init == nil {
		t.Fatal("no service runs keyledger init: the NATS servers would have no credentials to require")
	}
	for _, name := range apptest.SortedKeys(d.file.Services) {
		svc := d.file.Services[name]
		switch {
		case name == d.init.name:
		case strings.HasPrefix(svc.Image, "nats:"):
			d.natsNodes = append(d.natsNodes, parseNATSService(t, name, svc, d.volumeDirs))
		case svc.Build != "":
			k := parseKeyledgerService(t, d.dockerfile, name, svc)
			if k.setup != nil {
				if d.setup != nil {
					t.Errorf("services %s and %s both run setup", d.setup.name, name)
				}
				d.setup = k
				continue
			}
			if k.serve != nil {
				if d.ledger != nil {
					t.Errorf("services %s and %s both run serve", d.ledger.name, name)
				}
				d.ledger = k
			} else {
				d.validators = append(d.validators, k)
			}
		default:
			t.Errorf("service %s: neither a nats image nor built from the Dockerfile; teach this test what it is", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if d.ledger == nil {
		t.Fatal("no service runs keyledger serve")
	}
	if d.setup == nil {
		t.Fatal("no service runs keyledger setup: the ledger's credentials may not create the stream")
	}
	return d
}

// parseKeyledgerService parses a service's command the way runDaemon does
// for serve and validator: the same flag set (the command's flags, then the
// log flags), the KEYLEDGER_* environment first, then the command line,
// unknown flags and stray arguments refused.
func parseKeyledgerService(t *testing.T, df *dockerfile, name string, svc composeService) *keyledgerService {
	t.Helper()
	k := &keyledgerService{name: name, svc: svc}
	if len(svc.Command) == 0 {
		t.Fatalf("service %s: no command (the image's ENTRYPOINT is the binary; the command names the subcommand)", name)
	}
	sub, args := svc.Command[0], svc.Command[1:]
	fs := flag.NewFlagSet(sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch sub {
	case "serve":
		k.serve = new(app.ServeConfig)
		serveFlags(fs, k.serve)
	case "validator":
		k.node = new(app.NodeConfig)
		nodeFlags(fs, k.node)
	case "setup":
		k.setup = new(app.ServeConfig)
		setupFlags(fs, k.setup)
	default:
		t.Fatalf("service %s: command %q: want serve, validator or setup (the image's ENTRYPOINT is already %v)", name, svc.Command, df.entrypoint)
	}
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := applyEnvironment(fs, svc.Environment); err != nil {
		t.Fatalf("service %s: environment: %v", name, err)
	}
	if err := parseArgs(fs, args); err != nil {
		t.Fatalf("service %s: keyledger %s rejects %q: %v", name, sub, args, err)
	}
	if _, err := newLogger(io.Discard, *logFormat, *logLevel); err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	if h := svc.Healthcheck; h != nil && len(h.Test) > 1 && h.Test[0] == "CMD" && h.Test[1] == df.entrypoint[0] {
		k.health = h.Test[2:]
		if len(k.health) == 0 || k.health[0] != "healthcheck" {
			t.Fatalf("service %s: health check %q: want %s healthcheck ...", name, h.Test, df.entrypoint[0])
		}
		hfs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
		hfs.SetOutput(io.Discard)
		k.healthConf.flags(hfs)
		if err := parseArgs(hfs, k.health[1:]); err != nil {
			t.Fatalf("service %s: keyledger healthcheck rejects %q: %v", name, k.health[1:], err)
		}
		if _, err := k.healthConf.client(); err != nil {
			t.Fatalf("service %s: health check: %v", name, err)
		}
	}
	return k
}

// applyEnvironment is parseFlags' environment step with the service's
// environment instead of the process's; a KEYLEDGER_* variable that names
// no flag is an error here (parseFlags would silently ignore the typo).
func applyEnvironment(fs *flag.FlagSet, env map[string]string) error {
	known := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) {
		known["KEYLEDGER_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))] = f
	})
	for _, name := range apptest.SortedKeys(env) {
		if !strings.HasPrefix(name, "KEYLEDGER_") {
			continue
		}
		f, ok := known[name]
		if !ok {
			return fmt.Errorf("%s sets no flag of keyledger %s", name, fs.Name())
		}
		if err := f.Value.Set(env[name]); err != nil {
			return fmt.Errorf("%s=%q: %w", name, env[name], err)
		}
	}
	return nil
}

// parseNATSService runs the service's command line through nats-server's
// own ConfigureOptions (which reads the config file it names), with the
// container's config path mapped to the file in this repository, then
// reads the config file again strictly: warnings (unknown fields) fail too.
func parseNATSService(t *testing.T, name string, svc composeService, volumeDirs map[string]string) *natsService {
	t.Helper()
	n := &natsService{name: name, svc: svc}
	root := containerRoot(t, svc, volumeDirs)
	if len(svc.Command) == 0 || svc.Command[0] != "nats-server" {
		t.Fatalf("service %s: command %q: want nats-server ...", name, svc.Command)
	}
	args := slices.Clone(svc.Command[1:])
	for i, a := range args {
		flagName, value, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (flagName != "c" && flagName != "config") {
			continue
		}
		if !inline {
			if i+1 >= len(args) {
				t.Fatalf("service %s: %s without a file", name, a)
			}
			value = args[i+1]
		}
		n.configPath = value
		bindSource(t, svc, value) // a file of this repository
		n.configFile = filepath.Join(root, filepath.FromSlash(value))
		if inline {
			args[i] = a[:strings.Index(a, "=")+1] + n.configFile
		} else {
			args[i+1] = n.configFile
		}
		break
	}
	if n.configFile == "" {
		t.Fatalf("service %s: command %q names no config file", name, svc.Command)
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var printed []string
	opts, err := server.ConfigureOptions(fs, args,
		func() { printed = append(printed, "version") },
		func() { printed = append(printed, "help") },
		func() { printed = append(printed, "TLS help") })
	if err != nil {
		t.Fatalf("service %s: nats-server rejects %q: %v", name, svc.Command[1:], err)
	}
	if len(printed) > 0 {
		t.Fatalf("service %s: nats-server %q would print %v and exit", name, svc.Command[1:], printed)
	}
	strict := &server.Options{}
	if err := strict.ProcessConfigFile(n.configFile); err != nil {
		t.Fatalf("service %s: %s: %v", name, n.configFile, err)
	}
	n.opts = opts
	return n
}

// bindSource returns the file on this machine that a service's bind mount
// puts at target in the container.
func bindSource(t *testing.T, svc composeService, target string) string {
	t.Helper()
	for _, v := range svc.Volumes {
		src, dst, _ := parseVolume(v)
		if dst == target && isBindSource(src) {
			return filepath.Join(repoRoot, filepath.FromSlash(src))
		}
	}
	t.Fatalf("no bind mount puts a file at %s (volumes %q)", target, svc.Volumes)
	return ""
}

// runInitService parses the init service's command with init's flags and
// runs it as the container would, its --out directory (and the volumes
// mounted in it) under a temporary directory.
func runInitService(t *testing.T, name string, svc composeService) *initService {
	t.Helper()
	in := &initService{name: name, svc: svc}
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	in.cfg.flags(fs)
	if err := applyEnvironment(fs, svc.Environment); err != nil {
		t.Fatalf("service %s: environment: %v", name, err)
	}
	if err := parseArgs(fs, svc.Command[1:]); err != nil {
		t.Fatalf("service %s: keyledger init rejects %q: %v", name, svc.Command[1:], err)
	}
	if !path.IsAbs(in.cfg.Out) {
		t.Fatalf("service %s: --out %q: want an absolute path in the container", name, in.cfg.Out)
	}
	root := containerRoot(t, svc, nil)
	args := append([]string{"init", "--out", filepath.Join(root, filepath.FromSlash(in.cfg.Out)), "--stream", in.cfg.Stream}, "--routes", in.cfg.Routes)
	var out bytes.Buffer
	if code := run(t.Context(), args, &out, &out); code != 0 {
		t.Fatalf("service %s: keyledger init: exit %d\n%s", name, code, &out)
	}
	// It is run on every up: a second run must succeed and keep everything.
	out.Reset()
	if code := run(t.Context(), args, &out, &out); code != 0 || strings.Contains(out.String(), "wrote") {
		t.Fatalf("service %s: keyledger init run again: exit %d, want 0 and nothing written\n%s", name, code, &out)
	}
	in.root = root
	return in
}

// volumeDirs returns the directories on this machine that stand for the
// named volumes mounted in the init service.
func (in *initService) volumeDirs(t *testing.T) map[string]string {
	dirs := map[string]string{}
	for _, v := range in.svc.Volumes {
		src, dst, _ := parseVolume(v)
		if src != "" && !isBindSource(src) {
			dirs[src] = filepath.Join(in.root, filepath.FromSlash(dst))
		}
	}
	return dirs
}

// containerRoot makes a temporary directory that stands for a service's
// file system: its bind-mounted files copied, and the named volumes init
// filled linked, at their paths in the container.
func containerRoot(t *testing.T, svc composeService, volumeDirs map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, v := range svc.Volumes {
		src, dst, _ := parseVolume(v)
		at := filepath.Join(root, filepath.FromSlash(dst))
		if err := os.MkdirAll(filepath.Dir(at), 0o700); err != nil {
			t.Fatal(err)
		}
		switch {
		case isBindSource(src):
			data, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(src)))
			if err != nil {
				continue // TestCompose_File's Volumes reports it
			}
			if err := os.WriteFile(at, data, 0o600); err != nil {
				t.Fatal(err)
			}
		case volumeDirs[src] != "":
			if err := os.Symlink(volumeDirs[src], at); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.MkdirAll(at, 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// hostPath returns the file on this machine that p is in the service's
// container, through the volumes init filled ("" if on none of them).
func (d *deployment) hostPath(svc composeService, p string) string {
	for _, v := range svc.Volumes {
		src, dst, _ := parseVolume(v)
		if d.volumeDirs[src] == "" {
			continue
		}
		if rel, err := filepath.Rel(dst, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(d.volumeDirs[src], rel)
		}
	}
	return ""
}

// parseVolume splits the short syntax source:target[:mode].
func parseVolume(v string) (src, dst, mode string) {
	parts := strings.Split(v, ":")
	switch len(parts) {
	case 1:
		return "", parts[0], ""
	case 2:
		return parts[0], parts[1], ""
	}
	return parts[0], parts[1], strings.Join(parts[2:], ":")
}

func isBindSource(src string) bool {
	return strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~")
}

// parsePort splits the short syntax [host_ip:]host_port:container_port[/proto].
func parsePort(p string) (hostIP, hostPort, containerPort string, err error) {
	p, proto, _ := strings.Cut(p, "/")
	if proto != "" && proto != "tcp" {
		return "", "", "", fmt.Errorf("port %q: HTTP needs tcp", p)
	}
	i := strings.LastIndex(p, ":")
	if i < 0 {
		return "", "", "", fmt.Errorf("port %q: not published on the host (want host:container)", p)
	}
	containerPort, rest := p[i+1:], p[:i]
	hostPort = rest
	if j := strings.LastIndex(rest, ":"); j >= 0 {
		hostIP, hostPort = rest[:j], rest[j+1:]
	}
	for _, n := range []string{hostPort, containerPort} {
		if v, err := strconv.Atoi(n); err != nil || v < 1 || v > 65535 {
			return "", "", "", fmt.Errorf("port %q: %q is not a port number", p, n)
		}
	}
	return hostIP, hostPort, containerPort, nil
}

func (d *deployment) natsNode(name string) *natsService {
	for _, n := range d.natsNodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (d *deployment) keyledgerServices() []*keyledgerService {
	return append([]*keyledgerService{d.ledger}, d.validators...)
}

// TestCompose_File checks docker-compose.yml and the NATS configs it mounts
// against the programs that will read them and against each other.
func TestCompose_File(t *testing.T) {
	checkCompose(t, loadDeployment(t))
}

// TestCompose_DocsAddValidator adds the validator service that
// docs/deployment.md shows to the compose file and checks the result as
// TestCompose_File does: the documented way to add a node must work.
func TestCompose_DocsAddValidator(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "deployment.md"))
	if err != nil {
		t.Fatal(err)
	}
	var snippet string
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if strings.Contains(block[1], "validator") {
			snippet = block[1]
		}
	}
	if snippet == "" {
		t.Fatal("docs/deployment.md shows no yaml block that adds a validator")
	}
	compose, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	before, after, ok := strings.Cut(string(compose), "\nvolumes:\n")
	if !ok {
		t.Fatal("docker-compose.yml: no top-level volumes: to insert the service before")
	}
	d := parseDeployment(t, []byte(before+"\n"+snippet+"\nvolumes:\n"+after))
	if got, want := len(d.validators), len(loadDeployment(t).validators)+1; got != want {
		t.Fatalf("with the documented service: %d validators, want %d", got, want)
	}
	checkCompose(t, d)
}

func checkCompose(t *testing.T, d *deployment) {

	t.Run("Topology", func(t *testing.T) {
		if len(d.natsNodes) != 3 {
			t.Errorf("got %d NATS servers, want 3 (a replicated stream needs a quorum that survives one loss)", len(d.natsNodes))
		}
		if len(d.validators) < 2 {
			t.Errorf("got %d validation nodes, want at least 2", len(d.validators))
		}
		if d.ledger.serve.Replicas != len(d.natsNodes) {
			t.Errorf("serve --replicas %d, want one replica per NATS server (%d)", d.ledger.serve.Replicas, len(d.natsNodes))
		}
	})

	t.Run("NATSImage", func(t *testing.T) {
		// The image's tag, not this module's nats-server, is what runs:
		// it must have what eventstore needs (atomic batches).
		want := majorMinor(t, eventstore.MinServerVersion)
		for _, n := range d.natsNodes {
			tag := strings.TrimPrefix(n.svc.Image, "nats:")
			m := regexp.MustCompile(`^(\d+)\.(\d+)`).FindStringSubmatch(tag)
			if m == nil {
				t.Errorf("service %s: image %s: want a nats:MAJOR.MINOR tag, not a floating one", n.name, n.svc.Image)
				continue
			}
			if got := majorMinor(t, m[0]); got[0] < want[0] || (got[0] == want[0] && got[1] < want[1]) {
				t.Errorf("service %s: image %s is older than nats-server %s, which keyledger needs", n.name, n.svc.Image, eventstore.MinServerVersion)
			}
		}
	})

	t.Run("NATSConfigs", func(t *testing.T) {
		names := map[string]bool{}
		for _, n := range d.natsNodes {
			names[n.name] = true
		}
		clusterName := d.natsNodes[0].opts.Cluster.Name
		stores := map[string]string{}
		for _, n := range d.natsNodes {
			o := n.opts
			if o.ServerName != n.name {
				t.Errorf("service %s: server_name %q, want the service name (fixed, unique: JetStream's Raft peers are named by it)", n.name, o.ServerName)
			}
			if !o.JetStream {
				t.Errorf("service %s: JetStream not enabled", n.name)
			}
			if o.Host != "" && o.Host != "0.0.0.0" && o.Host != "::" {
				t.Errorf("service %s: listens on %s, want all interfaces of the container", n.name, o.Host)
			}
			if o.Port <= 0 || o.HTTPPort <= 0 {
				t.Errorf("service %s: client port %d, monitoring port %d: want both fixed", n.name, o.Port, o.HTTPPort)
			}
			if o.Cluster.Name == "" || o.Cluster.Name != clusterName {
				t.Errorf("service %s: cluster name %q, want one name on every node (%q)", n.name, o.Cluster.Name, clusterName)
			}
			if o.Cluster.Port <= 0 {
				t.Errorf("service %s: cluster port %d, want a fixed one", n.name, o.Cluster.Port)
			}
			// The routes name every node (itself included is harmless) at
			// the cluster port that node listens on.
			routed := map[string]bool{}
			for _, r := range o.Routes {
				peer := d.natsNode(r.Hostname())
				switch {
				case peer == nil:
					t.Errorf("service %s: route %s names no NATS service of the compose file", n.name, r)
				case r.Port() != strconv.Itoa(peer.opts.Cluster.Port):
					t.Errorf("service %s: route %s: %s listens for routes on %d", n.name, r, peer.name, peer.opts.Cluster.Port)
				default:
					routed[peer.name] = true
				}
			}
			for peer := range names {
				if peer != n.name && !routed[peer] {
					t.Errorf("service %s: no route to %s", n.name, peer)
				}
			}
			// The store is on a volume of the node's own.
			vol := volumeHolding(n.svc, o.StoreDir)
			switch {
			case vol == "":
				t.Errorf("service %s: store_dir %s is on no volume: the log would go with the container", n.name, o.StoreDir)
			case stores[vol] != "":
				t.Errorf("services %s and %s share the volume %s", stores[vol], n.name, vol)
			default:
				stores[vol] = n.name
			}
		}
	})

	t.Run("NATSURLs", func(t *testing.T) {
		// Every keyledger process lists every NATS server: it must reach
		// the log with any one of them down.
		for _, k := range append(d.keyledgerServices(), d.setup) {
			listed := map[string]bool{}
			for _, raw := range strings.Split(k.natsURL(), ",") {
				u, err := url.Parse(strings.TrimSpace(raw))
				if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") {
					t.Errorf("service %s: --nats-url entry %q: want nats://host:port", k.name, raw)
					continue
				}
				n := d.natsNode(u.Hostname())
				if n == nil {
					t.Errorf("service %s: --nats-url %s names no NATS service of the compose file", k.name, u)
					continue
				}
				if u.Port() != strconv.Itoa(n.opts.Port) {
					t.Errorf("service %s: --nats-url %s: %s listens for clients on %d", k.name, u, n.name, n.opts.Port)
				}
				listed[n.name] = true
			}
			for _, n := range d.natsNodes {
				if !listed[n.name] {
					t.Errorf("service %s: --nats-url %s leaves out %s", k.name, k.natsURL(), n.name)
				}
			}
		}
	})

	t.Run("DependsOn", func(t *testing.T) {
		for _, name := range apptest.SortedKeys(d.file.Services) {
			for _, dep := range apptest.SortedKeys(d.file.Services[name].DependsOn) {
				target, ok := d.file.Services[dep]
				switch cond := d.file.Services[name].DependsOn[dep].Condition; {
				case !ok:
					t.Errorf("service %s depends on %s, which does not exist", name, dep)
				case dep == d.init.name || dep == d.setup.name:
					if cond != "service_completed_successfully" {
						t.Errorf("service %s depends on %s with condition %q, want service_completed_successfully (a one-shot)", name, dep, cond)
					}
				case cond != "service_healthy":
					t.Errorf("service %s depends on %s with condition %q, want service_healthy", name, dep, cond)
				case target.Healthcheck == nil:
					t.Errorf("service %s waits for %s to be healthy, which has no health check", name, dep)
				}
			}
		}
		// setup and the ledger need the cluster, the ledger the stream
		// setup creates; validators need the genesis, which the ledger
		// writes.
		for _, n := range d.natsNodes {
			for _, k := range []*keyledgerService{d.setup, d.ledger} {
				if _, ok := k.svc.DependsOn[n.name]; !ok {
					t.Errorf("service %s does not wait for %s", k.name, n.name)
				}
			}
		}
		if _, ok := d.ledger.svc.DependsOn[d.setup.name]; !ok {
			t.Errorf("service %s does not wait for %s", d.ledger.name, d.setup.name)
		}
		if d.setup.svc.Restart != "no" {
			t.Errorf("service %s: restart %q, want \"no\" (a one-shot)", d.setup.name, d.setup.svc.Restart)
		}
		// setup configures the stream and buckets as serve wants them:
		// otherwise serve, with no right to update them, fails at start.
		got, want := *d.setup.setup, *d.ledger.serve
		if got.Stream != want.Stream || got.Replicas != want.Replicas || got.StreamMaxBytes != want.StreamMaxBytes ||
			got.IdempotencyMaxBytes != want.IdempotencyMaxBytes || got.NoncesMaxBytes != want.NoncesMaxBytes ||
			got.IdempotencyTTL != want.IdempotencyTTL || got.Signed.Window != want.Signed.Window {
			t.Errorf("service %s configures the stream and buckets otherwise than %s: %+v, want %+v", d.setup.name, d.ledger.name, got, want)
		}
		for _, v := range d.validators {
			if _, ok := v.svc.DependsOn[d.ledger.name]; !ok {
				t.Errorf("service %s does not wait for %s", v.name, d.ledger.name)
			}
		}
		// The NATS servers include what init writes.
		for _, n := range d.natsNodes {
			if _, ok := n.svc.DependsOn[d.init.name]; !ok {
				t.Errorf("service %s does not wait for %s", n.name, d.init.name)
			}
		}
		if d.init.svc.Restart != "no" {
			t.Errorf("service %s: restart %q, want \"no\" (a one-shot)", d.init.name, d.init.svc.Restart)
		}
	})

	t.Run("Credentials", func(t *testing.T) {
		// Every NATS server runs in operator mode with init's accounts,
		// and requires the route password of every route.
		password, err := os.ReadFile(filepath.Join(d.volumeDirs[volumeAt(d.init.svc, path.Join(d.init.cfg.Out, "keys"))], routePasswordFile))
		if err != nil {
			t.Fatalf("service %s: %s/keys is on no named volume of its own, or holds no route password: %v", d.init.name, d.init.cfg.Out, err)
		}
		for _, n := range d.natsNodes {
			o := n.opts
			if len(o.TrustedOperators) != 1 || o.SystemAccount == "" || o.AccountResolver == nil {
				t.Errorf("service %s: not in operator mode with init's operator (operators %d, system account %q)", n.name, len(o.TrustedOperators), o.SystemAccount)
			}
			if o.NoAuthUser != "" || len(o.Users) > 0 || len(o.Nkeys) > 0 || o.Username != "" || o.Authorization != "" {
				t.Errorf("service %s: clients may authenticate otherwise than with a user JWT of init's account", n.name)
			}
			if o.Cluster.Username == "" || o.Cluster.Password != strings.TrimSpace(string(password)) {
				t.Errorf("service %s: routes are not required to present init's route password", n.name)
			}
			for _, r := range o.Routes {
				if p, _ := r.User.Password(); r.User.Username() != o.Cluster.Username || p != o.Cluster.Password {
					t.Errorf("service %s: route %s does not carry the route credentials", n.name, r.Redacted())
				}
			}
		}
		// Each keyledger service holds the credentials of its role, from a
		// volume init filled, and no others.
		want := map[*keyledgerService][]string{d.setup: {"operator"}, d.ledger: {"ledger"}}
		for _, v := range d.validators {
			want[v] = []string{"validator"}
		}
		for _, k := range append(d.keyledgerServices(), d.setup) {
			file := d.hostPath(k.svc, k.natsCreds())
			if k.natsCreds() == "" || file == "" {
				t.Errorf("service %s: --nats-creds %q is on no volume init fills", k.name, k.natsCreds())
				continue
			}
			role := credsRole(t, file)
			if !slices.Contains(want[k], role) {
				t.Errorf("service %s: --nats-creds %s holds the %s role, want %v", k.name, k.natsCreds(), role, want[k])
			}
			for _, v := range k.svc.Volumes {
				src, _, mode := parseVolume(v)
				if d.volumeDirs[src] != "" && mode != "ro" {
					t.Errorf("service %s: mounts %s read-write, want :ro (init writes it)", k.name, src)
				}
				if dir := d.volumeDirs[src]; dir != "" && filepath.Dir(file) != dir {
					t.Errorf("service %s: mounts %s, which holds credentials it does not use", k.name, src)
				}
			}
		}
	})

	t.Run("Healthchecks", func(t *testing.T) {
		for _, name := range apptest.SortedKeys(d.file.Services) {
			h := d.file.Services[name].Healthcheck
			if name == d.init.name || name == d.setup.name {
				continue // a one-shot: others wait for it to complete
			}
			if h == nil {
				t.Errorf("service %s: no health check", name)
				continue
			}
			if len(h.Test) < 2 || h.Test[0] != "CMD" {
				t.Errorf("service %s: health check %q: want the exec form [CMD, ...] (the keyledger image has no shell)", name, h.Test)
			}
			for _, dur := range []string{h.Interval, h.Timeout, h.StartPeriod} {
				if _, err := time.ParseDuration(dur); dur != "" && err != nil {
					t.Errorf("service %s: health check: %v", name, err)
				}
			}
		}
		for _, k := range d.keyledgerServices() {
			if k.svc.Healthcheck == nil {
				continue // reported above
			}
			if k.health == nil {
				t.Errorf("service %s: health check %q: want [CMD, %s, healthcheck, --url, http://127.0.0.1:PORT/readyz]",
					k.name, k.svc.Healthcheck.Test, d.dockerfile.entrypoint[0])
				continue
			}
			u, _ := url.Parse(k.healthConf.URL)
			_, port, _ := net.SplitHostPort(k.httpAddr())
			if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
				t.Errorf("service %s: health check probes %s, want loopback (it runs inside the container)", k.name, u)
			}
			if u.Port() != port {
				t.Errorf("service %s: health check probes %s, but --http-addr is %s", k.name, u, k.httpAddr())
			}
			if u.Path != "/readyz" {
				t.Errorf("service %s: health check probes %s, want /readyz (healthy once caught up with the log)", k.name, u.Path)
			}
		}
		for _, n := range d.natsNodes {
			if n.svc.Healthcheck == nil {
				continue // reported above
			}
			probed := false
			for _, a := range n.svc.Healthcheck.Test {
				if u, err := url.Parse(a); err == nil && u.Scheme == "http" {
					probed = true
					if u.Port() != strconv.Itoa(n.opts.HTTPPort) || u.Path != "/healthz" {
						t.Errorf("service %s: health check probes %s, want /healthz on the monitoring port %d", n.name, u, n.opts.HTTPPort)
					}
				}
			}
			if !probed {
				t.Errorf("service %s: health check %q probes no http:// URL", n.name, n.svc.Healthcheck.Test)
			}
		}
	})

	t.Run("Ports", func(t *testing.T) {
		published := map[string]string{}
		for _, name := range apptest.SortedKeys(d.file.Services) {
			for _, p := range d.file.Services[name].Ports {
				hostIP, hostPort, _, err := parsePort(p)
				if err != nil {
					t.Errorf("service %s: %v", name, err)
					continue
				}
				// Published on loopback only: the API lets anyone who
				// reaches it register and get keys.
				if hostIP != "127.0.0.1" && hostIP != "[::1]" {
					t.Errorf("service %s: publishes %q on all interfaces, want 127.0.0.1:... (expose it only with TLS)", name, p)
				}
				if other := published[hostIP+":"+hostPort]; other != "" {
					t.Errorf("services %s and %s both publish host port %s", other, name, hostPort)
				}
				published[hostIP+":"+hostPort] = name
			}
		}
		for _, k := range d.keyledgerServices() {
			host, port, err := net.SplitHostPort(k.httpAddr())
			if err != nil {
				t.Errorf("service %s: --http-addr %q: %v", k.name, k.httpAddr(), err)
				continue
			}
			if host != "" && host != "0.0.0.0" && host != "::" {
				t.Errorf("service %s: --http-addr %s: a published port reaches only all-interfaces listeners (0.0.0.0)", k.name, k.httpAddr())
			}
			if len(k.svc.Ports) == 0 {
				t.Errorf("service %s: publishes no port", k.name)
			}
			for _, p := range k.svc.Ports {
				if _, _, containerPort, err := parsePort(p); err == nil && containerPort != port {
					t.Errorf("service %s: publishes container port %s, but --http-addr is %s", k.name, containerPort, k.httpAddr())
				}
			}
		}
		// The README's walk-through talks to http://127.0.0.1:8080.
		if _, hostPort, _, err := parsePort(d.ledger.svc.Ports[0]); err != nil || hostPort != "8080" {
			t.Errorf("service %s: publishes %q, want host port 8080 (the README's address)", d.ledger.name, d.ledger.svc.Ports)
		}
	})

	t.Run("Volumes", func(t *testing.T) {
		for _, name := range apptest.SortedKeys(d.file.Services) {
			for _, v := range d.file.Services[name].Volumes {
				src, _, _ := parseVolume(v)
				switch {
				case src == "":
					t.Errorf("service %s: anonymous volume %q: name it, or it is lost on docker compose down", name, v)
				case isBindSource(src):
					if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(src))); err != nil {
						t.Errorf("service %s: bind mount %q: %v", name, v, err)
					}
				default:
					if _, ok := d.file.Volumes[src]; !ok {
						t.Errorf("service %s: volume %s is not declared under volumes:", name, src)
					}
				}
			}
		}
		// serve's keys (session and ledger signing keys) must outlive the
		// container: the log is signed with the ledger key.
		if volumeHolding(d.ledger.svc, d.ledger.serve.DataDir) == "" {
			t.Errorf("service %s: --data-dir %s is on no named volume: the signing keys would go with the container", d.ledger.name, d.ledger.serve.DataDir)
		}
	})

	t.Run("Shutdown", func(t *testing.T) {
		// runDaemon gives requests in flight 15s after SIGTERM; Compose
		// kills the container when stop_grace_period (default 10s) runs out.
		for _, k := range d.keyledgerServices() {
			if g, err := time.ParseDuration(k.svc.StopGracePeriod); err != nil || g <= 15*time.Second {
				t.Errorf("service %s: stop_grace_period %q, want more than the 15s a graceful shutdown may take", k.name, k.svc.StopGracePeriod)
			}
		}
	})

	t.Run("Images", func(t *testing.T) {
		for _, k := range d.keyledgerServices() {
			if _, err := os.Stat(filepath.Join(repoRoot, k.svc.Build, "Dockerfile")); err != nil {
				t.Errorf("service %s: build %q: %v", k.name, k.svc.Build, err)
			}
			if k.svc.Image != d.ledger.svc.Image {
				t.Errorf("service %s: image %q, want the same image as %s (%q)", k.name, k.svc.Image, d.ledger.name, d.ledger.svc.Image)
			}
		}
	})
}

// volumeAt returns the named volume svc mounts at dir, or "".
func volumeAt(svc composeService, dir string) string {
	for _, v := range svc.Volumes {
		src, dst, _ := parseVolume(v)
		if dst == dir && src != "" && !isBindSource(src) {
			return src
		}
	}
	return ""
}

// credsRole returns the role (the user's name) of a .creds file.
func credsRole(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return uc.Name
}

// volumeHolding returns the named volume of svc whose mount holds dir, or "".
func volumeHolding(svc composeService, dir string) string {
	if dir == "" || !path.IsAbs(dir) {
		return ""
	}
	for _, v := range svc.Volumes {
		src, dst, _ := parseVolume(v)
		if src == "" || isBindSource(src) {
			continue
		}
		if rel, err := filepath.Rel(dst, dir); err == nil && !strings.HasPrefix(rel, "..") {
			return src
		}
	}
	return ""
}

func majorMinor(t *testing.T, v string) [2]int {
	t.Helper()
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("version %q: want MAJOR.MINOR", v)
	}
	var mm [2]int
	for i := range mm {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			t.Fatalf("version %q: %v", v, err)
		}
		mm[i] = n
	}
	return mm
}

// TestCompose_StackRunsInProcess runs the compose file's topology in this
// process: the three NATS servers from their own config files (ports and
// store directories moved to loopback and temporary ones, routes rewired to
// match), then serve and the validators from their compose command lines,
// each declared healthy by its own compose health check. It then checks the
// system end to end, and again with the NATS server the ledger is connected
// to shut down.
func TestCompose_StackRunsInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	d := loadDeployment(t)
	ctx := t.Context()

	// Route ports are chosen up front: each node's routes name the others'.
	clusterAddr := map[string]string{}
	for _, n := range d.natsNodes {
		clusterAddr[n.name] = apptest.FreeAddr(t)
	}
	natsServers := map[string]*server.Server{}
	clientAddr := map[string]string{}
	for _, n := range d.natsNodes {
		o := n.opts.Clone()
		o.ConfigFile = ""
		o.Host, o.Port = "127.0.0.1", -1
		o.HTTPHost, o.HTTPPort = "127.0.0.1", -1
		host, port, _ := net.SplitHostPort(clusterAddr[n.name])
		o.Cluster.Host = host
		o.Cluster.Port, _ = strconv.Atoi(port)
		o.Routes = nil
		for _, r := range n.opts.Routes {
			o.Routes = append(o.Routes, &url.URL{Scheme: r.Scheme, User: r.User, Host: clusterAddr[r.Hostname()]})
		}
		o.StoreDir = t.TempDir()
		o.NoSigs, o.NoLog = true, true
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		if !s.ReadyForConnections(15 * time.Second) {
			t.Fatalf("%s: not accepting clients within 15s", n.name)
		}
		natsServers[n.name] = s
		clientAddr[n.name] = strings.TrimPrefix(s.ClientURL(), "nats://")
	}
	// Healthy as compose sees it: the URL of each node's health check, on
	// the node's monitoring address.
	for _, n := range d.natsNodes {
		var probe string
		for _, a := range n.svc.Healthcheck.Test {
			if u, err := url.Parse(a); err == nil && u.Scheme == "http" {
				u.Host = natsServers[n.name].MonitorAddr().String()
				probe = u.String()
			}
		}
		natstest.Eventually(t, 30*time.Second, func() bool {
			resp, err := http.Get(probe)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, n.name+" healthy ("+probe+")")
	}
	rewire := func(urls string) string {
		var out []string
		for _, raw := range strings.Split(urls, ",") {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			u.Host = clientAddr[u.Hostname()]
			out = append(out, u.String())
		}
		return strings.Join(out, ",")
	}
	healthy := func(k *keyledgerService, addr string) func() bool {
		args := slices.Clone(k.health)
		for i, a := range args {
			if a == k.healthConf.URL || a == "--url="+k.healthConf.URL || a == "-url="+k.healthConf.URL {
				u, _ := url.Parse(k.healthConf.URL)
				u.Host = addr
				args[i] = strings.TrimSuffix(a, k.healthConf.URL) + u.String()
			}
		}
		return func() bool { return run(ctx, args, io.Discard, io.Discard) == 0 }
	}

	logs := &apptest.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	cfg := *d.ledger.serve
	cfg.NATSURL = rewire(cfg.NATSURL)
	cfg.NATSClient.Creds = d.hostPath(d.ledger.svc, cfg.NATSClient.Creds)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0" // in-process, the services share one host
	// The compose file admits invitation holders only; this test registers
	// the plain way (invite mode is tested with serve in internal/app).
	cfg.SignUp.Registration = "open"
	cfg.DataDir = t.TempDir()
	cfg.Argon2 = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}

	// Before setup, serve with the ledger's credentials may not create the
	// stream: it says so and what to run, well within its start timeout,
	// rather than retry until it gives up.
	early := cfg
	early.DataDir = t.TempDir()
	early.StartTimeout = time.Minute
	started := time.Now()
	premature := &app.Server{Config: early, Logger: logger.With("service", d.ledger.name+" (before setup)")}
	err := premature.Open(ctx)
	premature.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "keyledger setup") || !strings.Contains(err.Error(), "$JS.API.STREAM.CREATE."+cfg.Stream) {
		t.Fatalf("serve with the ledger's credentials before setup: %v; want an error naming the refused STREAM.CREATE and keyledger setup", err)
	}
	if took := time.Since(started); took > early.StartTimeout/2 {
		t.Errorf("serve before setup failed after %v, want well within its start timeout %v", took, early.StartTimeout)
	}

	// setup, from its compose command line, with the operator's credentials.
	setupArgs := slices.Clone(d.setup.svc.Command)
	for i, a := range setupArgs {
		switch name, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); {
		case name == "nats-url":
			setupArgs[i] = "--nats-url=" + rewire(value)
		case name == "nats-creds":
			setupArgs[i] = "--nats-creds=" + d.hostPath(d.setup.svc, value)
		}
	}
	var setupOut, setupErr bytes.Buffer
	if code := run(ctx, setupArgs, &setupOut, &setupErr); code != 0 {
		t.Fatalf("%s %q: exit %d\n%s%s", d.setup.name, d.setup.svc.Command, code, setupOut.String(), setupErr.String())
	}
	// Run again, it changes nothing and succeeds.
	if code := run(ctx, setupArgs, &setupOut, &setupErr); code != 0 {
		t.Fatalf("%s again: exit %d\n%s%s", d.setup.name, code, setupOut.String(), setupErr.String())
	}

	ledger := &app.Server{Config: cfg, Logger: logger.With("service", d.ledger.name)}
	if err := ledger.Open(ctx); err != nil {
		ledger.Close(context.Background())
		t.Fatalf("serve %q: %v", d.ledger.svc.Command[1:], err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		ledger.Close(cctx)
	})
	natstest.Eventually(t, 60*time.Second, healthy(d.ledger, ledger.HTTPAddr()), d.ledger.name+" healthy")

	var nodes []*app.Node
	for _, v := range d.validators {
		cfg := *v.node
		cfg.NATSURL = rewire(cfg.NATSURL)
		cfg.NATSClient.Creds = d.hostPath(v.svc, cfg.NATSClient.Creds)
		if cfg.StateDir == "" || !filepath.IsAbs(cfg.StateDir) {
			t.Errorf("validator %s: --state-dir %q, want an absolute path on a volume", v.name, cfg.StateDir)
		}
		cfg.StateDir = t.TempDir() // the volume's directory
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.MetricsAddr = "127.0.0.1:0"
		n := &app.Node{Config: cfg, Logger: logger.With("service", v.name)}
		if err := n.Open(ctx); err != nil {
			n.Close(context.Background())
			t.Fatalf("validator %q: %v", v.svc.Command[1:], err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			n.Close(cctx)
		})
		natstest.Eventually(t, 60*time.Second, healthy(v, n.HTTPAddr()), v.name+" healthy")
		nodes = append(nodes, n)
	}

	// The stream is replicated as --replicas says.
	creds := func(role string) nats.Option {
		return nats.UserCredentials(filepath.Join(d.volumeDirs[volumeAt(d.init.svc, path.Join(d.init.cfg.Out, role))], role+".creds"))
	}
	nc, err := nats.Connect(cfg.NATSURL, creds("operator"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != d.ledger.serve.Replicas || info.Cluster == nil || len(info.Cluster.Replicas) != d.ledger.serve.Replicas-1 {
		t.Fatalf("stream %s: replicas %d, cluster %+v; want %d replicas", cfg.Stream, info.Config.Replicas, info.Cluster, d.ledger.serve.Replicas)
	}

	checkLeastPrivilege(t, cfg.Stream, natsServers, clusterAddr, nc, func(role string) *nats.Conn {
		// The refusals are the point: the default handler would print each.
		c, err := nats.Connect(cfg.NATSURL, creds(role), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatalf("%s credentials: %v", role, err)
		}
		t.Cleanup(c.Close)
		return c
	})

	ts := &apptest.Server{Server: ledger, Base: "http://" + ledger.HTTPAddr(), Logs: logs}
	// A young R3 stream may still move its leader: a write can then answer
	// 503 (retry), never anything else.
	until201 := func(what, path, body string, headers ...string) apptest.Response {
		var r apptest.Response
		natstest.Eventually(t, 30*time.Second, func() bool {
			r = apptest.Send(t, "POST", ts.Base+path, body, append([]string{"Content-Type", "application/json"}, headers...)...)
			if r.Status != http.StatusServiceUnavailable {
				apptest.WantStatus(t, r, http.StatusCreated)
			}
			return r.Status == http.StatusCreated
		}, what)
		return r
	}
	until201("register", "/users", `{"email":"compose@example.com","password":"`+apptest.Password+`"}`)
	token := ts.Login(t, "compose@example.com", apptest.Password)
	// How fast a revocation spreads is tested elsewhere; here it must
	// arrive, through whatever elections the new cluster still holds.
	var lastSeen string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last /validate answers: %s", lastSeen)
		}
	})
	validates := func(k apptest.CreatedKey, want int) func() bool {
		return func() bool {
			lastSeen = ""
			ok := true
			for i, n := range nodes {
				r := apptest.Send(t, "GET", "http://"+n.HTTPAddr()+"/validate", "", apptest.APIKeyAuth(k)...)
				lastSeen += fmt.Sprintf("%s: %d %s; ", d.validators[i].name, r.Status, r.Body)
				ok = ok && r.Status == want
			}
			return ok
		}
	}
	created := func(r apptest.Response) apptest.CreatedKey {
		var m struct {
			APIKey string `json:"api_key"`
			Secret string `json:"secret"`
		}
		if err := json.Unmarshal(r.Body, &m); err != nil || m.APIKey == "" || m.Secret == "" {
			t.Fatalf("create key: %s (%v)", r.Body, err)
		}
		return apptest.CreatedKey{Key: m.APIKey, Secret: m.Secret}
	}
	key := created(until201("create a key", "/api-keys", "", "Authorization", "Bearer "+token))
	natstest.Eventually(t, 30*time.Second, validates(key, http.StatusOK), "every validator accepts the new key")
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+key.Key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	natstest.Eventually(t, 30*time.Second, validates(key, http.StatusUnauthorized), "every validator refuses the revoked key")

	// docs/deployment.md runs the admin commands against the cluster (from
	// the ledger's container): that must not rescale the stream.
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"admin", "ledger-keys", "list", "--nats-url", cfg.NATSURL,
		"--nats-creds", d.hostPath(d.ledger.svc, d.ledger.serve.NATSClient.Creds), "--signing-key", filepath.Join(cfg.DataDir, "ledger-ed25519.pem")}, &out, &errOut); code != 0 {
		t.Fatalf("admin ledger-keys list: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if info, err := stream.Info(ctx); err != nil || info.Config.Replicas != d.ledger.serve.Replicas {
		t.Fatalf("after an admin command: stream %s info %v, %v; want %d replicas still", cfg.Stream, info, err, d.ledger.serve.Replicas)
	}

	// One NATS server down, the one the ledger talks to: the ledger
	// reconnects to another from its --nats-url, the stream keeps a quorum,
	// and the validators keep following.
	down := ledger.Conn().ConnectedServerName()
	if natsServers[down] == nil {
		t.Fatalf("the ledger is connected to %q, not one of the compose NATS servers", down)
	}
	natsServers[down].Shutdown()
	natsServers[down].WaitForShutdown()
	var key2 apptest.CreatedKey
	natstest.Eventually(t, 60*time.Second, func() bool {
		r := apptest.Send(t, "POST", ts.Base+"/api-keys", "", "Authorization", "Bearer "+token)
		if r.Status != http.StatusCreated {
			return false
		}
		key2 = created(r)
		return true
	}, "the ledger creates keys with "+down+" down")
	natstest.Eventually(t, 60*time.Second, validates(key2, http.StatusOK), "every validator accepts a key created with "+down+" down")
	if got := ledger.Conn().ConnectedServerName(); got == down {
		t.Fatalf("the ledger is still connected to %s", down)
	}
}

// checkLeastPrivilege attacks the running compose cluster as the holder
// of a NATS address, then of a validator's or an auditor's credentials,
// then as a NATS server without the route password: each is refused, and
// the stream is as it was (checked with op, an operator connection).
func checkLeastPrivilege(t *testing.T, stream string, servers map[string]*server.Server, clusterAddr map[string]string,
	op *nats.Conn, connect func(role string) *nats.Conn) {
	t.Helper()
	ctx := t.Context()
	for _, name := range apptest.SortedKeys(servers) {
		c, err := nats.Connect(servers[name].ClientURL(), nats.MaxReconnects(0))
		if err == nil {
			c.Close()
			t.Errorf("%s accepts a client without credentials", name)
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: a client without credentials: %v, want an authorization violation", name, err)
		}
	}
	opJS, err := jetstream.New(op)
	if err != nil {
		t.Fatal(err)
	}
	before, err := opJS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info := before.CachedInfo()
	// The refused requests run at once: each may wait out its deadline.
	var wg sync.WaitGroup
	for _, role := range []string{"validator", "auditor"} {
		js, err := jetstream.New(connect(role))
		if err != nil {
			t.Fatal(err)
		}
		// Reading is what the role is for.
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("%s credentials cannot read stream %s: %v", role, stream, err)
		}
		// A refused JetStream request may get no answer at all: a short
		// deadline each, and the operator's view of the stream below says
		// whether any of them got through.
		refused := func(what string, do func(context.Context) error) {
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if err := do(rctx); err == nil {
					t.Errorf("%s credentials: %s succeeded, want it refused", role, what)
				}
			})
		}
		refused("stream edit (metadata)", func(c context.Context) error {
			cfg := info.Config
			cfg.Metadata = map[string]string{"keyledger_signing_keys": "forged"}
			_, err := js.UpdateStream(c, cfg)
			return err
		})
		refused("stream seal", func(c context.Context) error {
			cfg := info.Config
			cfg.Sealed = true
			_, err := js.UpdateStream(c, cfg)
			return err
		})
		refused("stream purge", func(c context.Context) error { return st.Purge(c) })
		refused("message delete", func(c context.Context) error { return st.DeleteMsg(c, 1) })
		refused("stream rm", func(c context.Context) error { return js.DeleteStream(c, stream) })
		refused("stream add", func(c context.Context) error {
			_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "POLLUTION", Subjects: []string{"pollution.>"}})
			return err
		})
		refused("publish to keyledger.key.x", func(c context.Context) error {
			_, err := js.Publish(c, "keyledger.key.x", []byte(`{"forged":true}`))
			return err
		})
		refused("nonce bucket purge", func(c context.Context) error {
			kv, err := js.KeyValue(c, stream+"_NONCES")
			if err != nil {
				return err
			}
			return kv.Purge(c, "x")
		})
		refused("idempotency bucket delete", func(c context.Context) error { return js.DeleteKeyValue(c, stream+"_IDEMPOTENCY") })
		refused("admin nonce bucket write", func(c context.Context) error {
			_, err := js.Publish(c, "$KV."+stream+"_ADMIN_NONCES.x", nil)
			return err
		})
	}
	wg.Wait()
	after, err := opJS.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s after the attacks: %v", stream, err)
	}
	got := after.CachedInfo()
	if got.Created != info.Created || got.Config.Sealed || got.State.FirstSeq != info.State.FirstSeq ||
		got.State.Msgs < info.State.Msgs || got.Config.Metadata["keyledger_signing_keys"] == "forged" {
		t.Errorf("stream %s changed under the attacks: %+v, was %+v", stream, got, info)
	}
	for _, name := range []string{"POLLUTION", "KV_" + stream + "_IDEMPOTENCY"} {
		_, err := opJS.Stream(ctx, name)
		if (name == "POLLUTION") != errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream %s after the attacks: %v", name, err)
		}
	}

	// A server that knows the cluster's name and addresses but not the
	// route password: the node it dials refuses the route.
	target := apptest.SortedKeys(servers)[0]
	seen := &routeLog{}
	servers[target].SetLoggerV2(seen, false, false, false)
	before2 := servers[target].NumRoutes()
	o := &server.Options{ServerName: "intruder", Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true}
	o.Cluster.Name = servers[target].ClusterName()
	o.Cluster.Host, o.Cluster.Port = "127.0.0.1", -1
	o.Routes = []*url.URL{{Scheme: "nats-route", User: url.UserPassword("route", "guessed-password-0000"), Host: clusterAddr[target]}}
	intruder, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go intruder.Start()
	t.Cleanup(func() {
		intruder.Shutdown()
		intruder.WaitForShutdown()
	})
	// (The intruder itself counts the route from the target's greeting
	// until the target closes it: only the target's view is the cluster's.)
	natstest.Eventually(t, 30*time.Second, seen.refused, target+" refuses the intruder's route")
	if n := servers[target].NumRoutes(); n != before2 {
		t.Errorf("%s has %d routes, had %d before the intruder", target, n, before2)
	}
}

// routeLog is a nats-server logger that notes a route refused for its
// credentials.
type routeLog struct{ seen atomic.Bool }

func (l *routeLog) refused() bool { return l.seen.Load() }

func (l *routeLog) Errorf(format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); strings.Contains(msg, "rid:") && strings.Contains(strings.ToLower(msg), "authentication error") {
		l.seen.Store(true)
	}
}
func (l *routeLog) Noticef(string, ...any) {}
func (l *routeLog) Warnf(string, ...any)   {}
func (l *routeLog) Fatalf(string, ...any)  {}
func (l *routeLog) Debugf(string, ...any)  {}
func (l *routeLog) Tracef(string, ...any)  {}

// dockerfile is the Dockerfile, split into stages of instructions.
type dockerfile struct {
	args   map[string]string // ARGs before the first FROM, with defaults
	stages []*dockerStage
	// entrypoint is the final stage's ENTRYPOINT (exec form).
	entrypoint []string
}

type dockerStage struct {
	from, name string
	instrs     []dockerInstruction
}

type dockerInstruction struct {
	cmd  string // upper case
	args string
	line int
}

func loadDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(string(data))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return df
}

// parseDockerfile splits a Dockerfile into instructions: comment lines
// dropped, backslash continuations joined.
func parseDockerfile(text string) (*dockerfile, error) {
	df := &dockerfile{args: map[string]string{}}
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		cur.Reset()
		in := dockerInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			st := &dockerStage{}
			switch {
			case len(f) == 1:
				st.from = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.from, st.name = f[0], f[2]
			default:
				return nil, fmt.Errorf("line %d: FROM %s", in.line, in.args)
			}
			df.stages = append(df.stages, st)
		case len(df.stages) == 0 && in.cmd == "ARG":
			for _, a := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(a, "=")
				df.args[k] = v
			}
		case len(df.stages) == 0:
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		default:
			st := df.stages[len(df.stages)-1]
			st.instrs = append(st.instrs, in)
		}
	}
	if cur.Len() > 0 {
		return nil, errors.New("ends in a line continuation")
	}
	if len(df.stages) == 0 {
		return nil, errors.New("no FROM")
	}
	for _, in := range df.stages[len(df.stages)-1].instrs {
		if in.cmd == "ENTRYPOINT" {
			if err := json.Unmarshal([]byte(in.args), &df.entrypoint); err != nil || len(df.entrypoint) == 0 {
				return nil, fmt.Errorf("line %d: ENTRYPOINT %s: want the exec form [\"/path\", ...]", in.line, in.args)
			}
		}
	}
	if df.entrypoint == nil {
		return nil, errors.New("the final stage has no ENTRYPOINT")
	}
	return df, nil
}

func (df *dockerfile) final() *dockerStage { return df.stages[len(df.stages)-1] }

func (df *dockerfile) stage(name string) *dockerStage {
	for _, st := range df.stages {
		if st.name == name {
			return st
		}
	}
	return nil
}

// last returns the args of the stage's last instruction cmd, or "".
func (st *dockerStage) last(cmd string) string {
	var args string
	for _, in := range st.instrs {
		if in.cmd == cmd {
			args = in.args
		}
	}
	return args
}

// copyTo finds the stage's COPY [--from=STAGE] [--chown=USER] SRC DST with DST dst.
func (st *dockerStage) copyTo(dst string) (from, src, chown string, ok bool) {
	for _, in := range st.instrs {
		if in.cmd != "COPY" {
			continue
		}
		f := strings.Fields(in.args)
		if len(f) < 2 || f[len(f)-1] != dst {
			continue
		}
		for _, opt := range f[:len(f)-2] {
			if v, ok := strings.CutPrefix(opt, "--from="); ok {
				from = v
			}
			if v, ok := strings.CutPrefix(opt, "--chown="); ok {
				chown = v
			}
		}
		return from, f[len(f)-2], chown, true
	}
	return "", "", "", false
}

// goBuild is the build stage's go build command, parsed.
type goBuild struct {
	env  []string // NAME=value assignments before the command
	args []string // after "go"
	out  string   // the -o value
}

// goBuildCommand finds the RUN instruction of st that runs go build and
// splits it as a POSIX shell would (quotes, $VAR and ${VAR} from vars; no
// operators or other commands: one RUN, one command).
func (st *dockerStage) goBuildCommand(vars map[string]string) (*goBuild, error) {
	var runs []string
	for _, in := range st.instrs {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			runs = append(runs, in.args)
		}
	}
	if len(runs) != 1 {
		return nil, fmt.Errorf("stage %s: %d RUN instructions run go build, want 1", st.name, len(runs))
	}
	words, err := shellWords(runs[0], vars)
	if err != nil {
		return nil, fmt.Errorf("RUN %s: %w", runs[0], err)
	}
	for len(words) > 0 && strings.HasPrefix(words[0], "--") { // RUN's own options (--mount=...)
		words = words[1:]
	}
	b := &goBuild{}
	for len(words) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[0]) {
		b.env, words = append(b.env, words[0]), words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		return nil, fmt.Errorf("RUN %s: want [VAR=value ...] go build ...", runs[0])
	}
	b.args = words[1:]
	for i, a := range b.args {
		if a == "-o" && i+1 < len(b.args) {
			b.out = b.args[i+1]
		} else if v, ok := strings.CutPrefix(a, "-o="); ok {
			b.out = v
		}
	}
	return b, nil
}

func (b *goBuild) getenv(name string) (string, bool) {
	for _, kv := range b.env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v, true
		}
	}
	return "", false
}

// flagValue returns the value of a go build flag (-name value or -name=value).
func (b *goBuild) flagValue(name string) (string, bool) {
	for i, a := range b.args {
		switch {
		case a == name || a == "-"+name:
			if i+1 < len(b.args) {
				return b.args[i+1], true
			}
		case strings.HasPrefix(a, name+"=") || strings.HasPrefix(a, "-"+name+"="):
			_, v, _ := strings.Cut(a, "=")
			return v, true
		}
	}
	return "", false
}

// shellWords splits a simple shell command: whitespace-separated words,
// single and double quotes, $NAME and ${NAME} expanded from vars (outside
// single quotes). Anything fancier is refused.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(i int) (int, error) {
		j := i + 1
		var name string
		if j < len(s) && s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				return 0, errors.New("unterminated ${")
			}
			name, j = s[j+1:j+end], j+end+1
		} else {
			for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			name = s[i+1 : j]
		}
		v, ok := vars[name]
		if !ok {
			return 0, fmt.Errorf("$%s: not a build argument this test knows", name)
		}
		cur.WriteString(v)
		return j, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord, i = true, i+end+2
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '$' {
					j, err := expand(i)
					if err != nil {
						return nil, err
					}
					i = j - 1
					continue
				}
				if s[i] == '\\' || s[i] == '`' {
					return nil, fmt.Errorf("%q inside double quotes: keep the command simple", s[i])
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`unterminated "`)
			}
			inWord, i = true, i+1
		case c == '$':
			j, err := expand(i)
			if err != nil {
				return nil, err
			}
			inWord, i = true, j
		case strings.IndexByte(";&|<>()`\\*?[#~", c) >= 0:
			return nil, fmt.Errorf("%q: one plain command per RUN, please", c)
		default:
			cur.WriteByte(c)
			inWord, i = true, i+1
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// buildVars are the values the go build RUN sees: the global ARG defaults
// and BuildKit's automatic platform arguments for this machine's
// architecture on Linux (the image's OS).
func (df *dockerfile) buildVars() map[string]string {
	vars := map[string]string{
		"TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "TARGETPLATFORM": "linux/" + runtime.GOARCH,
		"BUILDOS": "linux", "BUILDARCH": runtime.GOARCH, "BUILDPLATFORM": "linux/" + runtime.GOARCH,
	}
	for k, v := range df.args {
		vars[k] = v
	}
	return vars
}

// TestDockerfile checks the Dockerfile's shape: a static build of
// ./cmd/keyledger in a Go stage, copied into a minimal runtime stage that
// runs it as a non-root user.
func TestDockerfile(t *testing.T) {
	df := loadDockerfile(t)
	final := df.final()
	if len(df.stages) < 2 {
		t.Fatalf("got %d stages, want a build stage and a runtime stage", len(df.stages))
	}

	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("runtime stage FROM %s: want gcr.io/distroless/static-* or scratch (nothing but the static binary)", final.from)
	}
	user := final.last("USER")
	uid, _, _ := strings.Cut(user, ":")
	if user == "" || uid == "0" || uid == "root" {
		t.Errorf("runtime stage USER %q: want a non-root user", user)
	}
	if final.from == "scratch" {
		if _, err := strconv.Atoi(uid); err != nil {
			t.Errorf("USER %q on scratch: want a numeric uid (there is no /etc/passwd)", user)
		}
	}
	if len(df.entrypoint) != 1 || !path.IsAbs(df.entrypoint[0]) || path.Base(df.entrypoint[0]) != "keyledger" {
		t.Errorf("ENTRYPOINT %q: want [\"/keyledger\"] (the command names the subcommand)", df.entrypoint)
	}

	from, src, _, ok := final.copyTo(df.entrypoint[0])
	if !ok || from == "" {
		t.Fatalf("the runtime stage does not COPY --from=<build stage> the binary to %s", df.entrypoint[0])
	}
	build := df.stage(from)
	if build == nil {
		t.Fatalf("COPY --from=%s: no stage named %s", from, from)
	}
	if !strings.HasPrefix(build.from, "golang:") {
		t.Errorf("build stage FROM %s: want an official golang image", build.from)
	}
	// The Go version of the build image is the one go.mod asks for.
	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	image, err := shellWords(build.from, df.buildVars())
	if err != nil || len(image) != 1 {
		t.Fatalf("build stage FROM %s: %v", build.from, err)
	}
	if m == nil || !strings.HasPrefix(image[0], "golang:"+string(m[1])) {
		t.Errorf("build stage FROM %s (%s): want golang:%s, the version go.mod declares", build.from, image[0], m[1])
	}

	b, err := build.goBuildCommand(df.buildVars())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := b.getenv("CGO_ENABLED"); v != "0" {
		t.Errorf("go build with CGO_ENABLED=%q, want 0 (a static binary)", v)
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("go build %q: want -trimpath", b.args)
	}
	if v, _ := b.flagValue("-ldflags"); v != "-s -w" {
		t.Errorf("go build -ldflags %q, want \"-s -w\"", v)
	}
	if pkg := b.args[len(b.args)-1]; pkg != "./cmd/keyledger" {
		t.Errorf("go build of %s, want ./cmd/keyledger", pkg)
	}
	if b.out != src {
		t.Errorf("go build -o %s, but the runtime stage copies %s", b.out, src)
	}

	// serve's data dir in the compose file exists in the image, owned by
	// the runtime user: a fresh named volume mounted there copies that
	// owner, so serve can write its keys.
	d := loadDeployment(t)
	_, _, chown, ok := final.copyTo(d.ledger.serve.DataDir)
	if !ok || chown != user {
		t.Errorf("the runtime stage does not COPY --chown=%s a directory to %s (serve's --data-dir in docker-compose.yml)", user, d.ledger.serve.DataDir)
	}
}

// TestDockerBuild_StaticBinary runs the Dockerfile's go build command, as
// written there, and checks that its output is a static, stripped,
// path-free Linux binary that runs.
func TestDockerBuild_StaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	df := loadDockerfile(t)
	from, _, _, _ := df.final().copyTo(df.entrypoint[0])
	build := df.stage(from)
	if build == nil {
		t.Fatal("no build stage (TestDockerfile says why)")
	}
	b, err := build.goBuildCommand(df.buildVars())
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "keyledger")
	args := slices.Clone(b.args)
	for i, a := range args {
		if a == "-o" {
			args[i+1] = bin
		} else if strings.HasPrefix(a, "-o=") {
			args[i] = "-o=" + bin
		}
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = root
	// The builder's environment is clean: no GOFLAGS (-race, -cover) from
	// this test run.
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	cmd.Env = append(cmd.Env, b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s go %s: %v\n%s", strings.Join(b.env, " "), strings.Join(args, " "), err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("not an ELF binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it is dynamically linked and needs a loader the runtime image lacks")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q (%v)", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags -s missing")
	}
	if f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		t.Error("the binary has DWARF: -ldflags -w missing")
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bi.Path != "github.com/keyledger/keyledger/cmd/keyledger" {
		t.Errorf("built %s, want github.com/keyledger/keyledger/cmd/keyledger", bi.Path)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOOS"] != "linux" {
		t.Errorf("build settings %v: want CGO_ENABLED=0, -trimpath=true, GOOS=linux", settings)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(root+string(filepath.Separator))) {
		t.Errorf("the binary contains this machine's path %s", root)
	}

	if runtime.GOOS != "linux" {
		t.Skip("the binary is for Linux")
	}
	// It runs, and its health check works: it is what the compose health
	// checks execute.
	if out, err := exec.Command(bin, "help").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("healthcheck")) {
		t.Fatalf("keyledger help: %v\n%s", err, out)
	}
	var unready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if out, err := exec.Command(bin, "healthcheck", "--url", srv.URL+"/readyz").CombinedOutput(); err != nil {
		t.Errorf("keyledger healthcheck of a ready server: %v\n%s", err, out)
	}
	unready.Store(true)
	err = exec.Command(bin, "healthcheck", "--url", srv.URL+"/readyz").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("keyledger healthcheck of an unready server: got %v, want exit status 1", err)
	}
}

// TestDockerignore checks that the build context keeps out serve's data
// directory, keys and certificates, and keeps every file the build needs.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: %q: exceptions are beyond this test's matcher; extend it", line)
		}
		patterns = append(patterns, strings.TrimPrefix(path.Clean(line), "/"))
	}
	ignored := func(name string) bool {
		for _, p := range patterns {
			if dockerignoreMatch(p, name) {
				return true
			}
		}
		return false
	}
	for _, secret := range []string{
		"data/ledger-ed25519.pem", "data/session-ed25519.pem", "data/nats/jetstream/x",
		"certificate.crt", "private.key", "api.csr", "pki/testdata/ca.pem", "deploy/tls/server.key",
		"nats.creds", ".git/config", "keyledger",
	} {
		if !ignored(secret) {
			t.Errorf(".dockerignore lets %s into the build context", secret)
		}
	}
	// Every Go source file, go.mod and go.sum stay in.
	root, _ := filepath.Abs(repoRoot)
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel == ".git" || rel == "data" || e.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if (strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go")) || rel == "go.mod" || rel == "go.sum" {
			if ignored(rel) {
				t.Errorf(".dockerignore keeps %s, which the build needs, out of the context", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dockerignoreMatch reports whether pattern excludes name (or a directory
// holding it), with .dockerignore's rules: paths relative to the context
// root, path.Match per element, and ** for any number of elements.
func dockerignoreMatch(pattern, name string) bool {
	var match func(ps, ns []string) bool
	match = func(ps, ns []string) bool {
		if len(ps) == 0 {
			return true // a directory match excludes everything below it
		}
		if ps[0] == "**" {
			for i := 0; i <= len(ns); i++ {
				if match(ps[1:], ns[i:]) {
					return true
				}
			}
			return false
		}
		if len(ns) == 0 {
			return false
		}
		ok, err := path.Match(ps[0], ns[0])
		return err == nil && ok && match(ps[1:], ns[1:])
	}
	return match(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

// TestHealthcheck runs `keyledger healthcheck` against servers in every
// state a container health check meets.
func TestHealthcheck(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte(`{"ready":true,"applied_seq":7}`))
		case "/unready":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"ready":false}`))
		case "/redirect":
			http.Redirect(w, r, "/readyz", http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(handler)
	defer tlsSrv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	closed := "http://" + apptest.FreeAddr(t) + "/readyz"

	for _, c := range []struct {
		name   string
		args   []string
		want   int
		output string
	}{
		{"Ready", []string{"--url", plain.URL + "/readyz"}, 0, `200 OK {"ready":true,"applied_seq":7}`},
		{"Unready", []string{"--url", plain.URL + "/unready"}, 1, `503 Service Unavailable {"ready":false}`},
		{"Refused", []string{"--url", closed}, 1, "connection refused"},
		{"RedirectIsNotHealth", []string{"--url", plain.URL + "/redirect"}, 1, "302 Found"},
		{"Timeout", []string{"--url", plain.URL + "/slow", "--timeout", "200ms"}, 1, "deadline exceeded"},
		{"TLSUnknownAuthority", []string{"--url", tlsSrv.URL + "/readyz"}, 1, "certificate"},
		{"TLSWithCA", []string{"--url", tlsSrv.URL + "/readyz", "--ca", caFile}, 0, "200 OK"},
		{"TLSInsecure", []string{"--url", tlsSrv.URL + "/readyz", "--insecure"}, 0, "200 OK"},
		{"UsageScheme", []string{"--url", "ftp://127.0.0.1/readyz"}, 2, "--url"},
		{"UsageNoHost", []string{"--url", "/readyz"}, 2, "--url"},
		{"UsageTimeout", []string{"--timeout", "0s"}, 2, "--timeout"},
		{"UsageCAWithHTTP", []string{"--url", plain.URL + "/readyz", "--ca", caFile}, 2, "https"},
		{"UsageCAAndInsecure", []string{"--url", tlsSrv.URL, "--ca", caFile, "--insecure"}, 2, "exclude"},
		{"UsageArgs", []string{"--url", plain.URL + "/readyz", "extra"}, 2, "unexpected arguments"},
		{"UsageFlag", []string{"--no-such-flag"}, 2, "no-such-flag"},
		{"Help", []string{"-h"}, 0, "-url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(t.Context(), append([]string{"healthcheck"}, c.args...), &stdout, &stderr)
			if got != c.want {
				t.Fatalf("got exit %d, want %d; stdout %q, stderr %q", got, c.want, stdout.String(), stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, c.output) {
				t.Errorf("got output %q, want it to contain %q", out, c.output)
			}
		})
	}

	t.Run("EnvironmentThenCommandLine", func(t *testing.T) {
		t.Setenv("KEYLEDGER_URL", plain.URL+"/readyz")
		if got := run(t.Context(), []string{"healthcheck"}, io.Discard, io.Discard); got != 0 {
			t.Fatalf("KEYLEDGER_URL: got exit %d, want 0", got)
		}
		t.Setenv("KEYLEDGER_URL", closed)
		if got := run(t.Context(), []string{"healthcheck", "--url", plain.URL + "/readyz"}, io.Discard, io.Discard); got != 0 {
			t.Fatalf("--url over KEYLEDGER_URL: got exit %d, want 0", got)
		}
		t.Setenv("KEYLEDGER_TIMEOUT", "nonsense")
		var stderr bytes.Buffer
		if got := run(t.Context(), []string{"healthcheck", "--url", plain.URL + "/readyz"}, io.Discard, &stderr); got != 2 || !strings.Contains(stderr.String(), "KEYLEDGER_TIMEOUT") {
			t.Fatalf("bad KEYLEDGER_TIMEOUT: got exit %d, %q, want 2 naming the variable", got, stderr.String())
		}
	})
}
