package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestABodyThatIsNotAnObjectIsNamedSoWithoutGoTypes(t *testing.T) {
	for _, body := range []string{`[1]`, `"text"`, `42`, `true`} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()

		echo.ServeHTTP(rec, req)

		if want := `{"errors":[{"message":"Request body must be a JSON object"}]}`; rec.Code != 400 || strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("%s: want 400 %s, got %d %s", body, want, rec.Code, rec.Body)
		}
	}
}
