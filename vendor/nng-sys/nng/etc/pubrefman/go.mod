module go.nanomsg.org/nng/pubrefman

go 1.14

require (
	github.com/bytesparadise/libasciidoc v0.3.1-0.20200802124845-5dcda3220c31
	github.com/go-git/go-billy/v5 v5.0.0
	github.com/go-git/go-git/v5 v5.1.0
	github.com/google/uuid v1.1.1
	github.com/spf13/jwalterweatherman v1.0.0
)
