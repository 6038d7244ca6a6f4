package system

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// functionEnv is a function's environment: its container's env from the manifest with
// Secrets taken from the local values, the local database, Redis and Stripe instead of the
// cluster's, the user's own value for any other variable set in their environment, and what
// Knative adds (PORT comes from serving; K_SERVICE, K_REVISION, K_CONFIGURATION; K_SINK from
// the SinkBinding that selects the Service).
func (s *System) functionEnv(svc *servingv1.Service) ([]string, error) {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		// Cluster names (K_SINK, the client's upstreams) go through the ingress.
		"HTTP_PROXY=http://" + s.Addr(), "NO_PROXY=127.0.0.1,localhost,::1",
		"K_SERVICE=" + svc.Name, "K_CONFIGURATION=" + svc.Name, "K_REVISION=" + svc.Name + "-00001",
	}
	uses := map[string]bool{}
	for _, e := range svc.Spec.Template.Spec.Containers[0].Env {
		uses[e.Name] = true
		v := e.Value
		if e.ValueFrom != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref == nil {
				return nil, fmt.Errorf("function %s: env %s: only secretKeyRef is supported locally", svc.Name, e.Name)
			}
			v = s.secrets[ref.Key]
			if v == "" {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				return nil, fmt.Errorf("function %s needs %s from Secret %s: set %s in the environment", svc.Name, ref.Key, ref.Name, ref.Key)
			}
		}
		switch e.Name {
		case "OTEL_EXPORTER_OTLP_ENDPOINT":
			continue // the cluster's Jaeger; here tracing.go decides (TRACE=1 or the user's endpoint)
		case "MONGO_URL":
			v = s.mongoURL(v, svc.Name)
		case "REDIS_URL":
			v = s.redis.URL
		default:
			if mine := s.cfg.Getenv(e.Name); mine != "" && e.ValueFrom == nil {
				v = mine
			}
		}
		env = append(env, e.Name+"="+v)
	}
	if uses["STRIPE_KEY"] && s.stripe != nil {
		env = append(env, "STRIPE_API_BASE="+s.stripe.URL)
	}
	if base := s.cfg.Getenv("SENDGRID_API_BASE"); uses["SENDGRID_API_KEY"] && base != "" {
		env = append(env, "SENDGRID_API_BASE="+base)
	}
	if sink := s.app.Sink(svc); sink != nil {
		u, err := s.resolve(*sink)
		if err != nil || u == nil {
			return nil, fmt.Errorf("function %s: K_SINK: %v", svc.Name, err)
		}
		env = append(env, "K_SINK="+u.String())
	}
	env = append(env, s.traceEnv...) // tracing.go: set with TRACE=1 or OTEL_EXPORTER_OTLP_ENDPOINT
	return env, nil
}

// mongoURL: the user's MONGO_URL (a mongodb:// server gets the function's database from the
// manifest's URL), else one embedded database file per function under the data dir.
func (s *System) mongoURL(manifestURL, function string) string {
	mine := s.cfg.Getenv("MONGO_URL")
	if mine == "" {
		return "file:" + filepath.Join(s.cfg.Data, "db")
	}
	if !strings.HasPrefix(mine, "mongodb://") && !strings.HasPrefix(mine, "mongodb+srv://") {
		return mine
	}
	db := function
	if m, err := url.Parse(manifestURL); err == nil && strings.Trim(m.Path, "/") != "" {
		db = path.Base(m.Path)
	}
	u, err := url.Parse(mine)
	if err != nil {
		return mine
	}
	u.Path = "/" + db
	return u.String()
}
