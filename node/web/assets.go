package web

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"

	"github.com/medledger/medledger/fhir"
)

// The pages' files: plain HTML, CSS and JavaScript modules, no build step.
//
//go:embed assets
var assetFS embed.FS

// pages are the two pages' HTML, by path.
var pages = map[string]string{PatientPath: "assets/app.html", OfficerPath: "assets/audit.html"}

// assets registers the pages and their scripts and styles, under either page's path.
func (s *Server) assets() {
	for p, file := range pages {
		s.mux.HandleFunc("GET "+p+"{$}", serveAsset(file))
		s.mux.HandleFunc("GET "+p+"{file}", serveNamed)
	}
}

var notFoundOutcome = fhir.OperationOutcome(fhir.Issue{Severity: "error", Code: "not-found", Message: "There is no such page here."})

// serveNamed serves a script or style of the pages (404 for anything else).
func serveNamed(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if ext := path.Ext(name); ext != ".js" && ext != ".css" && ext != ".svg" {
		writeFHIR(w, http.StatusNotFound, notFoundOutcome)
		return
	}
	serveAsset("assets/"+name)(w, r)
}

// serveAsset serves one embedded file with its content type.
func serveAsset(file string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(assetFS, file)
		if err != nil {
			writeFHIR(w, http.StatusNotFound, notFoundOutcome)
			return
		}
		ct := mime.TypeByExtension(path.Ext(file))
		if path.Ext(file) == ".js" {
			ct = "text/javascript; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(b) // an error here is the client gone: nothing to do
		}
	}
}
