// Package kindpath tests hack/cluster.sh, the kind path (make cluster, deploy, undeploy; README:
// Deploy to kind), where no cluster can run: it runs the script on a copy of the repository's
// manifests with recording stand-ins for docker, kind, kubectl, ko, kn, curl, make, npm, node
// and go on PATH (this test binary under each name: it logs its arguments, environment and
// input, and answers what the real tool would), then reads the order and content of the calls.
package kindpath
