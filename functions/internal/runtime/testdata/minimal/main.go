// Command minimal is the smallest tickit function: the runtime with one slow route. Tests
// use it to watch SIGTERM drain a request, and the benchmark to time a cold start.
package main

import (
	"net/http"
	"time"

	"github.com/tickit/tickit/functions/internal/httpapi"
	"github.com/tickit/tickit/functions/internal/runtime"
)

func main() {
	runtime.Serve(runtime.Function{
		Name: "minimal",
		Routes: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /api/slow", func(w http.ResponseWriter, r *http.Request) {
				d, _ := time.ParseDuration(r.URL.Query().Get("for"))
				time.Sleep(d)
				httpapi.WriteJSON(w, http.StatusOK, map[string]string{"slept": d.String()})
			})
		},
	})
}
