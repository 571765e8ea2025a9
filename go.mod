module fieldtip

go 1.26.8

require (
	filippo.io/age v1.3.2
	github.com/mattn/go-sqlite3 v1.14.53
	golang.org/x/mod v0.43.0
)

require (
	filippo.io/hpke v0.4.0 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
	github.com/spf13/pflag v1.1.0 // indirect
	golang.org/x/crypto v0.55.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
	golang.org/x/tools v0.52.0 // indirect
)
