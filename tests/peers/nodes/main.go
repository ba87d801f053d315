// Command hubble-test-nodes stands in for the Hubble side of a Cilium cluster in hubble-noise's
// end-to-end tests: a peer service (peer.Peer/Notify) and one node per node_name of a recording,
// each on its own 127.0.0.1 port, serving observer.Observer with Cilium's own observer server
// (ring buffer, follow, number, since, until, filters, field mask, ServerStatus). Cilium's real
// hubble-relay connects to them as it would to cilium-agents.
//
// Flows are held back until the control releases them, so a test decides when each flow is
// "seen" by its node. The control is a small HTTP server on 127.0.0.1:
//
//	GET  /status                 nodes, their ports, whether they are up, requests seen
//	POST /release?n=K            hand the next K recorded flows to their nodes (all without n)
//	POST /stop?node=NAME         stop serving (connections cut; the node keeps its ring)
//	POST /start?node=NAME        serve again on the same port
//	POST /add?node=NAME          a new, empty node (PEER_ADDED)
//	POST /remove?node=NAME       stop it and announce PEER_DELETED
//
// Cilium's ring buffer never hands out its newest entry (it may still be being written), and a
// follow reader on an empty ring waits until the ring wraps. A real node sees traffic all the
// time, so neither shows there; here each node starts with two filler flows and gets one more
// after every release, so every recorded flow is delivered. Fillers are FORWARDED L3/L4 flows
// with uuids starting "filler-": filters for drops or DNS never match them.
//
// `hubble-test-nodes get-flows -server ADDR -field-mask PATHS` is a bare client instead (see
// getFlows).
//
// On start it prints one JSON line to stdout: the control, peer service and node addresses.
// Every GetFlows request a node receives is appended to -request-log as one JSON line,
// with the field mask and whether Cilium's field-mask validation accepts it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	peerpb "github.com/cilium/cilium/api/v1/peer"
	v1 "github.com/cilium/cilium/pkg/hubble/api/v1"
	"github.com/cilium/cilium/pkg/hubble/container"
	"github.com/cilium/cilium/pkg/hubble/observer"
	"github.com/cilium/cilium/pkg/hubble/observer/namespace"
	"github.com/cilium/cilium/pkg/hubble/observer/observeroption"
	observerTypes "github.com/cilium/cilium/pkg/hubble/observer/types"
	"github.com/cilium/cilium/pkg/hubble/parser/fieldmask"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// recorded is the payload of a monitor event: a flow already decoded from the recording.
type recorded struct{ flow *flowpb.Flow }

// decoder hands Cilium's observer the recorded flow as if its parser had decoded it.
type decoder struct{}

func (decoder) Decode(ev *observerTypes.MonitorEvent) (*v1.Event, error) {
	r, ok := ev.Payload.(recorded)
	if !ok {
		return nil, fmt.Errorf("unexpected payload %T", ev.Payload)
	}
	return &v1.Event{Timestamp: r.flow.GetTime(), Event: r.flow}, nil
}

// node is one stand-in cilium-agent.
type node struct {
	name     string
	addr     string
	obs      *observer.LocalObserverServer
	mu       sync.Mutex
	srv      *grpc.Server
	requests int
	fillers  int // guarded by cluster.mu, like last
	last     time.Time
}

// write hands one flow to the node's observer (which writes it to the ring).
func (n *node) write(f *flowpb.Flow) {
	n.obs.GetEventsChannel() <- &observerTypes.MonitorEvent{
		Timestamp: f.GetTime().AsTime(),
		NodeName:  n.name,
		Payload:   recorded{flow: f},
	}
}

// fill writes one filler flow at the node's latest time.
func (n *node) fill() {
	n.fillers++
	n.write(&flowpb.Flow{
		Time:      timestamppb.New(n.last),
		Uuid:      fmt.Sprintf("filler-%s-%d", n.name, n.fillers),
		Verdict:   flowpb.Verdict_FORWARDED,
		Type:      flowpb.FlowType_L3_L4,
		NodeName:  n.name,
		EventType: &flowpb.CiliumEventType{Type: 4},
		IP:        &flowpb.IP{Source: "10.0.0.1", Destination: "10.0.0.2", IpVersion: flowpb.IPVersion_IPv4},
	})
}

func (n *node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	lis, err := net.Listen("tcp", n.addr)
	if err != nil {
		return fmt.Errorf("node %s: listen %s: %w", n.name, n.addr, err)
	}
	n.addr = lis.Addr().String()
	srv := grpc.NewServer()
	observerpb.RegisterObserverServer(srv, n.obs)
	n.srv = srv
	go func() { _ = srv.Serve(lis) }()
	return nil
}

func (n *node) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

func (n *node) up() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil
}

// cluster holds the nodes, the peer subscribers and the recording.
type cluster struct {
	mu       sync.Mutex
	nodes    map[string]*node
	subs     map[chan *peerpb.ChangeNotification]struct{}
	flows    []*flowpb.Flow
	released int
	maxFlows container.Capacity
	logger   *slog.Logger
	reqLog   *json.Encoder
	reqLogMu sync.Mutex
}

// newNode starts a node whose fillers are dated `start`.
func (c *cluster) newNode(name string, start time.Time) (*node, error) {
	n := &node{name: name, addr: "127.0.0.1:0", last: start}
	obs, err := observer.NewLocalServer(decoder{}, namespace.NewManager(), c.logger,
		observeroption.WithMaxFlows(c.maxFlows),
		observeroption.WithOnGetFlowsFunc(func(ctx context.Context, req *observerpb.GetFlowsRequest) (context.Context, error) {
			c.logRequest(n, req)
			return ctx, nil
		}),
	)
	if err != nil {
		return nil, err
	}
	n.obs = obs
	go obs.Start()
	n.fill()
	n.fill()
	if err := n.start(); err != nil {
		return nil, err
	}
	return n, nil
}

// logRequest appends one GetFlows request to the request log.
func (c *cluster) logRequest(n *node, req *observerpb.GetFlowsRequest) {
	n.mu.Lock()
	n.requests++
	n.mu.Unlock()
	if c.reqLog == nil {
		return
	}
	// protojson cannot write a FieldMask whose paths are not lower snake case (Flow's "IP" and
	// "Type" are valid paths): the mask is logged on its own below.
	bare := proto.Clone(req).(*observerpb.GetFlowsRequest)
	bare.FieldMask = nil
	raw, err := protojson.Marshal(bare)
	if err != nil {
		raw = []byte(`null`)
	}
	entry := map[string]any{
		"time":    time.Now().UTC().Format(time.RFC3339Nano),
		"node":    n.name,
		"request": json.RawMessage(raw),
	}
	if fm := req.GetFieldMask(); fm != nil {
		// fieldmask.New normalises the mask in place: log the paths as sent, check a copy.
		entry["field_mask"] = append([]string(nil), fm.GetPaths()...)
		_, err := fieldmask.New(proto.Clone(fm).(*fieldmaskpb.FieldMask))
		entry["field_mask_valid"] = err == nil
	}
	c.reqLogMu.Lock()
	defer c.reqLogMu.Unlock()
	_ = c.reqLog.Encode(entry)
}

func (c *cluster) notify(n *peerpb.ChangeNotification) {
	for ch := range c.subs {
		select {
		case ch <- n:
		default:
			// A subscriber that does not read is cut off below; never block the control.
			close(ch)
			delete(c.subs, ch)
		}
	}
}

func added(n *node) *peerpb.ChangeNotification {
	return &peerpb.ChangeNotification{Name: n.name, Address: n.addr, Type: peerpb.ChangeNotificationType_PEER_ADDED}
}

// peerServer serves peer.Peer/Notify.
type peerServer struct {
	peerpb.UnimplementedPeerServer
	c *cluster
}

func (p peerServer) Notify(_ *peerpb.NotifyRequest, stream peerpb.Peer_NotifyServer) error {
	ch := make(chan *peerpb.ChangeNotification, 1024)
	p.c.mu.Lock()
	names := make([]string, 0, len(p.c.nodes))
	for name := range p.c.nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ch <- added(p.c.nodes[name])
	}
	p.c.subs[ch] = struct{}{}
	p.c.mu.Unlock()
	defer func() {
		p.c.mu.Lock()
		if _, ok := p.c.subs[ch]; ok {
			delete(p.c.subs, ch)
		}
		p.c.mu.Unlock()
	}()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case n, ok := <-ch:
			if !ok {
				return errors.New("subscriber too slow")
			}
			if err := stream.Send(n); err != nil {
				return err
			}
		}
	}
}

// release hands the next k flows (all when k < 0) to their nodes, in recording order.
func (c *cluster) release(k int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := len(c.flows)
	if k >= 0 && c.released+k < end {
		end = c.released + k
	}
	touched := map[*node]bool{}
	defer func() {
		for n := range touched {
			n.fill()
		}
	}()
	for ; c.released < end; c.released++ {
		f := c.flows[c.released]
		n, ok := c.nodes[f.GetNodeName()]
		if !ok {
			return c.released, fmt.Errorf("flow %d: node %q was removed", c.released, f.GetNodeName())
		}
		n.last = f.GetTime().AsTime()
		n.write(f)
		touched[n] = true
	}
	return c.released, nil
}

type nodeStatus struct {
	Address  string `json:"address"`
	Up       bool   `json:"up"`
	Requests int    `json:"requests"`
	Flows    uint64 `json:"flows"`
}

func (c *cluster) status() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes := map[string]nodeStatus{}
	for name, n := range c.nodes {
		n.mu.Lock()
		nodes[name] = nodeStatus{Address: n.addr, Up: n.srv != nil, Requests: n.requests, Flows: n.obs.GetRingBuffer().Len()}
		n.mu.Unlock()
	}
	return map[string]any{"released": c.released, "total": len(c.flows), "nodes": nodes}
}

func (c *cluster) control(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, v any) {
		body, err := json.Marshal(v)
		if err != nil {
			code, body = http.StatusInternalServerError, []byte(`{"error":"encoding"}`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(code)
		_, _ = w.Write(body)
	}
	fail := func(code int, err error) { reply(code, map[string]string{"error": err.Error()}) }
	name := r.URL.Query().Get("node")
	lookup := func() (*node, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		n, ok := c.nodes[name]
		if !ok {
			fail(http.StatusNotFound, fmt.Errorf("no node %q", name))
		}
		return n, ok
	}
	if r.URL.Path != "/status" && r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, errors.New("use POST"))
		return
	}
	switch r.URL.Path {
	case "/status":
	case "/release":
		k := -1
		if s := r.URL.Query().Get("n"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				fail(http.StatusBadRequest, fmt.Errorf("n=%q: want a count", s))
				return
			}
			k = v
		}
		if _, err := c.release(k); err != nil {
			fail(http.StatusConflict, err)
			return
		}
	case "/stop":
		n, ok := lookup()
		if !ok {
			return
		}
		n.stop()
	case "/start":
		n, ok := lookup()
		if !ok {
			return
		}
		// A node that comes back has seen traffic meanwhile. It matters: a follow reader
		// starts one entry before the newest, so without it the relay's re-subscription would
		// hand out the node's last flow from before it went away.
		c.mu.Lock()
		n.fill()
		c.mu.Unlock()
		if err := n.start(); err != nil {
			fail(http.StatusInternalServerError, err)
			return
		}
	case "/add":
		c.mu.Lock()
		_, exists := c.nodes[name]
		c.mu.Unlock()
		if exists || name == "" {
			fail(http.StatusConflict, fmt.Errorf("node %q exists or is empty", name))
			return
		}
		n, err := c.newNode(name, time.Now())
		if err != nil {
			fail(http.StatusInternalServerError, err)
			return
		}
		c.mu.Lock()
		c.nodes[name] = n
		c.notify(added(n))
		c.mu.Unlock()
	case "/remove":
		n, ok := lookup()
		if !ok {
			return
		}
		n.stop()
		c.mu.Lock()
		delete(c.nodes, name)
		c.notify(&peerpb.ChangeNotification{Name: n.name, Address: n.addr, Type: peerpb.ChangeNotificationType_PEER_DELETED})
		c.mu.Unlock()
	default:
		fail(http.StatusNotFound, fmt.Errorf("no such control %q", r.URL.Path))
		return
	}
	reply(http.StatusOK, c.status())
}

// load reads `hubble observe -o json` lines; every line must hold a flow with a time and a
// node name, or loading fails naming the line.
func load(path string) ([]*flowpb.Flow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*flowpb.Flow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	opts := protojson.UnmarshalOptions{DiscardUnknown: true}
	for line := 1; sc.Scan(); line++ {
		text := sc.Bytes()
		if len(text) == 0 {
			continue
		}
		var resp observerpb.GetFlowsResponse
		if err := opts.Unmarshal(text, &resp); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		fl := resp.GetFlow()
		switch {
		case fl == nil:
			return nil, fmt.Errorf("%s:%d: not a flow", path, line)
		case fl.GetTime().CheckValid() != nil:
			return nil, fmt.Errorf("%s:%d: flow without a valid time", path, line)
		case fl.GetNodeName() == "":
			return nil, fmt.Errorf("%s:%d: flow without node_name", path, line)
		}
		out = append(out, fl)
	}
	return out, sc.Err()
}

// getFlows is a bare GetFlows client: unlike the hubble CLI it sends any field mask unchecked,
// so tests can show what a node does with a mask it refuses. It prints each response as JSON.
func getFlows(addr, mask string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	req := &observerpb.GetFlowsRequest{Number: ^uint64(0)}
	if mask != "" {
		req.FieldMask = &fieldmaskpb.FieldMask{Paths: strings.Split(mask, ",")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := observerpb.NewObserverClient(conn).GetFlows(ctx, req)
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		line, err := protojson.Marshal(resp)
		if err != nil {
			return err
		}
		fmt.Println(string(line))
	}
}

func run() error {
	if len(os.Args) > 1 && os.Args[1] == "get-flows" {
		fs := flag.NewFlagSet("get-flows", flag.ExitOnError)
		server := fs.String("server", "127.0.0.1:4245", "relay or node address")
		mask := fs.String("field-mask", "", "comma-separated paths, sent unchecked")
		if err := fs.Parse(os.Args[2:]); err != nil {
			return err
		}
		return getFlows(*server, *mask)
	}
	flows := flag.String("flows", "", "recording (hubble observe -o json lines), split by node_name")
	control := flag.String("control", "127.0.0.1:0", "control HTTP address")
	peerAddr := flag.String("peer", "127.0.0.1:0", "peer service address")
	reqLog := flag.String("request-log", "", "append every GetFlows request here (JSON lines)")
	maxFlows := flag.Int("max-flows", 65535, "ring buffer size per node (2^n-1)")
	release := flag.Bool("release", false, "release every flow at start")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "exit when standard input closes (the test that started us is gone)")
	flag.Parse()

	capacity, err := container.NewCapacity(*maxFlows)
	if err != nil {
		return fmt.Errorf("-max-flows: %w", err)
	}
	c := &cluster{
		nodes:    map[string]*node{},
		subs:     map[chan *peerpb.ChangeNotification]struct{}{},
		maxFlows: capacity,
		logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if *reqLog != "" {
		f, err := os.OpenFile(*reqLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		c.reqLog = json.NewEncoder(f)
	}
	if *flows != "" {
		if c.flows, err = load(*flows); err != nil {
			return err
		}
	}
	for _, f := range c.flows {
		name := f.GetNodeName()
		if _, ok := c.nodes[name]; ok {
			continue
		}
		// The fillers come before the node's first flow: the ring stays in time order.
		n, err := c.newNode(name, f.GetTime().AsTime().Add(-time.Second))
		if err != nil {
			return err
		}
		c.nodes[name] = n
	}

	peerLis, err := net.Listen("tcp", *peerAddr)
	if err != nil {
		return fmt.Errorf("peer service: %w", err)
	}
	peerSrv := grpc.NewServer()
	peerpb.RegisterPeerServer(peerSrv, peerServer{c: c})
	go func() { _ = peerSrv.Serve(peerLis) }()

	ctlLis, err := net.Listen("tcp", *control)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	go func() { _ = http.Serve(ctlLis, http.HandlerFunc(c.control)) }()

	if *release {
		if _, err := c.release(-1); err != nil {
			return err
		}
	}
	addrs := map[string]string{}
	for name, n := range c.nodes {
		addrs[name] = n.addr
	}
	ready, err := json.Marshal(map[string]any{
		"control": ctlLis.Addr().String(),
		"peer":    peerLis.Addr().String(),
		"nodes":   addrs,
		"flows":   len(c.flows),
	})
	if err != nil {
		return err
	}
	fmt.Println(string(ready))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	if *stdinEOF {
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	}
	select {
	case <-sig:
	case <-stdinClosed:
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hubble-test-nodes:", err)
		os.Exit(1)
	}
}
