package main

import (
	"testing"

	"github.com/mailsync/mailsync/sync/odootest"
)

// TestMain starts this package's private Odoo (the end-to-end tests with the
// Odoo sink use it); see sync/odootest.
func TestMain(m *testing.M) {
	odootest.Main(m, odootest.Instance{Name: "cmd", Base: 27120})
}
