// Package ws is the DCM's WebSocket endpoint: end users' apps open /ws with a
// user token and receive a JSON frame for every incentive they are issued,
// live, and after a reconnect with `since` what they missed, with no gap and
// no duplicate at the seam. /ws/demo serves a page that does it in a browser.
//
// # What a connection goes through
//
// A handshake is refused before the upgrade, as problem+json, when it is not
// a WebSocket handshake (426), comes from a browser page of a foreign origin
// (403), carries no valid token (401: missing, forged, expired, another
// algorithm than HS256) or a token of another role than user (403), has a
// malformed since (400), or would exceed the user's connection cap (429).
// Tokens come from the Authorization header, the access_token query
// parameter or the subprotocol pair "access_token, <token>" (browsers cannot
// set headers on a WebSocket); they are never logged.
//
// An open connection has a writer goroutine with a bounded queue, fed by
// [Server.Deliver] without ever blocking, and a reader that discards what
// the client sends (it only has to answer pings). A client that lets its
// queue fill is closed with 1013; one that stops answering pings is dropped.
//
// # Instances
//
// A Server delivers to the sockets it holds. Every DCM instance consumes all
// of incentive-generated in a consumer group of its own (adapters/kafka
// DCMConsumer), so a user's sockets may be spread over instances and each
// gets every notification once (docs/architecture.md, "The DCM").
//
// This package is the only one that imports gorilla/websocket. It never
// blocks the consumer that calls Deliver, and never holds a notification for
// a user who is not connected: the incentive table is the history.
package ws
