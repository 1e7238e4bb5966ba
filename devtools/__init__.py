"""Development tooling, not part of the product: local doubles of the outside services
(an OpenAI-compatible server, carrier REST and media-stream callers, Stripe, webhook
receivers) that speak the real wire protocols over real sockets. `make run`'s demo and
the test suite use them; the production image does not install this package
(docker/Dockerfile.dockerignore), and no module of apps/ or config/ imports it at
import time: the few commands that drive a call from the outside (`simulate_call`)
import it when run and say so when it is missing."""
