package server

import (
	"context"
	"net/http"
)

// openLog opens the editorial log at start (issue 3; not built yet).
func (s *Server) openLog(ctx context.Context) error { return nil }

// registerLogRoutes serves the editorial log's endpoints (not built yet).
func (s *Server) registerLogRoutes(mux *http.ServeMux) {}
