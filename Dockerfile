# The platform's binary in a minimal image. Build: docker build -t incentives .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/incentives ./cmd/incentives

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/incentives /usr/local/bin/incentives
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/incentives"]
CMD ["serve"]
