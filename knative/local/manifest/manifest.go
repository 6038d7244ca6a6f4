// Package manifest loads the Knative manifests under knative/ the way the
// cluster's API server would: every YAML document is decoded strictly into
// its typed object (unknown fields fail), defaulted and validated with
// Knative's own code. The local runtime and the manifest tests both read the
// app through Load, so what runs locally is what would be applied.
package manifest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/yaml"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	servingconfig "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// App is the tickit application as the manifests under knative/ describe it.
type App struct {
	Services     []*servingv1.Service
	Brokers      []*eventingv1.Broker
	Triggers     []*eventingv1.Trigger
	PingSources  []*sourcesv1.PingSource
	SinkBindings []*sourcesv1.SinkBinding
}

// Load reads every YAML document under dir (recursively, skipping Go modules such as
// knative/local), decodes each one strictly into its Knative type, sets defaults and
// validates it. Errors name the file and the document's index in it.
func Load(dir string) (*App, error) {
	app := &App{}
	err := walkDocuments(dir, func(file string, index int, doc []byte) error {
		if err := app.add(doc); err != nil {
			return fmt.Errorf("%s (document %d): %w", file, index, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return app, nil
}

// typeMeta is what every Kubernetes object starts with.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

func (app *App) add(doc []byte) error {
	var tm typeMeta
	if err := json.Unmarshal(doc, &tm); err != nil {
		return err
	}
	ctx := clusterContext()
	switch tm.APIVersion + "/" + tm.Kind {
	case "serving.knative.dev/v1/Service":
		obj := &servingv1.Service{}
		if err := knative(ctx, doc, obj); err != nil {
			return err
		}
		app.Services = append(app.Services, obj)
	case "eventing.knative.dev/v1/Broker":
		obj := &eventingv1.Broker{}
		if err := knative(ctx, doc, obj); err != nil {
			return err
		}
		app.Brokers = append(app.Brokers, obj)
	case "eventing.knative.dev/v1/Trigger":
		obj := &eventingv1.Trigger{}
		if err := knative(ctx, doc, obj); err != nil {
			return err
		}
		app.Triggers = append(app.Triggers, obj)
	case "sources.knative.dev/v1/PingSource":
		obj := &sourcesv1.PingSource{}
		if err := knative(ctx, doc, obj); err != nil {
			return err
		}
		app.PingSources = append(app.PingSources, obj)
	case "sources.knative.dev/v1/SinkBinding":
		obj := &sourcesv1.SinkBinding{}
		if err := knative(ctx, doc, obj); err != nil {
			return err
		}
		app.SinkBindings = append(app.SinkBindings, obj)
	default:
		return fmt.Errorf("unsupported object %s %s", tm.APIVersion, tm.Kind)
	}
	return nil
}

// knativeObject is what every Knative API type implements.
type knativeObject interface {
	apis.Defaultable
	apis.Validatable
}

// clusterFeatures is the data of config-features (knative-eventing) in config/: the
// Triggers' delivery timeout is a feature flag. A test checks that the two agree.
var clusterFeatures = map[string]string{feature.DeliveryTimeout: string(feature.Enabled)}

// clusterContext is what the webhooks validate a new object against: Serving's defaults and
// the cluster's Eventing feature flags, in a create request.
func clusterContext() context.Context {
	flags, err := feature.NewFlagsConfigFromMap(clusterFeatures)
	if err != nil {
		panic(err) // a constant above: a bad flag is a programming error the tests catch
	}
	ctx := feature.ToContext(context.Background(), flags)
	ctx = servingconfig.ToContext(ctx, servingconfig.FromContextOrDefaults(ctx))
	return apis.WithinCreate(ctx)
}

// knative decodes doc strictly into obj, then defaults and validates it as the webhook would.
func knative(ctx context.Context, doc []byte, obj knativeObject) error {
	if err := strict(doc, obj); err != nil {
		return err
	}
	obj.SetDefaults(ctx)
	// Like the webhook, refuse errors; warnings are admitted (the tests keep them at zero).
	if err := obj.Validate(ctx).Filter(apis.ErrorLevel); err != nil {
		return err
	}
	return nil
}

// strict decodes one JSON document into obj, failing on unknown fields.
func strict(doc []byte, obj any) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the object")
	}
	return nil
}

// walkDocuments calls fn with every non-empty YAML document (as JSON) of every
// .yaml/.yml file under dir, in lexical file order. Subdirectories holding a go.mod are
// Go modules (knative/local), not manifests: they are skipped, as make deploy skips them.
func walkDocuments(dir string, fn func(file string, index int, doc []byte) error) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != dir {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		reader := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for index := 0; ; index++ {
			raw, err := reader.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s (document %d): %w", path, index, err)
			}
			doc, err := sigsyaml.YAMLToJSON(raw)
			if err != nil {
				return fmt.Errorf("%s (document %d): %w", path, index, err)
			}
			if string(doc) == "null" { // only comments
				continue
			}
			if err := fn(path, index, doc); err != nil {
				return err
			}
		}
	})
}

// koPrefix marks an image that ko builds from a Go main package.
const koPrefix = "ko://"

// functionsPrefix is where the functions' main packages are: functions/<name>.
const functionsPrefix = "github.com/tickit/tickit/functions/"

// Function returns the import path of the function a Service runs (its ko:// image of a main
// package under functions/), or "" for a Service the local runtime does not run: a prebuilt
// image, or a cluster piece built from elsewhere, such as the dead-letter sink
// (knative/local/cmd/dead-letters), whose part the local Broker plays itself.
func Function(svc *servingv1.Service) string {
	containers := svc.Spec.Template.Spec.Containers
	if len(containers) == 0 || !strings.HasPrefix(containers[0].Image, koPrefix+functionsPrefix) {
		return ""
	}
	return strings.TrimPrefix(containers[0].Image, koPrefix)
}

// Sink returns the destination a SinkBinding injects into svc as K_SINK, or nil when no
// SinkBinding selects it (by name or by label selector).
func (app *App) Sink(svc *servingv1.Service) *duckv1.Destination {
	for _, b := range app.SinkBindings {
		s := b.Spec.Subject
		if s.APIVersion != servingv1.SchemeGroupVersion.String() || s.Kind != "Service" || s.Namespace != svc.Namespace {
			continue
		}
		if s.Name != "" {
			if s.Name == svc.Name {
				return &b.Spec.Sink
			}
			continue
		}
		selector, err := metav1.LabelSelectorAsSelector(s.Selector)
		if err == nil && selector.Matches(labels.Set(svc.Labels)) {
			return &b.Spec.Sink
		}
	}
	return nil
}
