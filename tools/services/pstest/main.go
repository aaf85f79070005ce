// Command pstest-server serves the in-memory Pub/Sub fake of
// cloud.google.com/go/pubsub/v2/pstest over gRPC, for hybridflow's tests.
//
//	pstest-server -port 8085    (clients: PUBSUB_EMULATOR_HOST=127.0.0.1:8085)
//
// It stops on SIGINT or SIGTERM.
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	port := flag.Int("port", 8085, "TCP port to listen on (0 picks a free one)")
	flag.Parse()
	srv := pstest.NewServerWithPort(*port)
	log.Printf("pstest listening on %s", srv.Addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	if err := srv.Close(); err != nil {
		log.Printf("close: %v", err)
	}
}
