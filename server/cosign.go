package server

import "net/http"

// registerCosignRoutes serves editors' cosignatures of the log's
// checkpoints (cosign.go).
func (s *Server) registerCosignRoutes(mux *http.ServeMux) {}
