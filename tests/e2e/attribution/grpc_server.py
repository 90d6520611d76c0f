"""A real gRPC server (Python grpcio) for the attribution tests: the kubelet pod-resources API
(v1.PodResourcesLister/List) and the container runtime's CRI API (runtime.v1.RuntimeService
ListPodSandbox/ListContainers), each on its own unix socket, with stubs generated at start from
the same vendored .proto files the exporter is built from.

usage: grpc_server.py PROTO_DIR SPEC_JSON [--pod-resources SOCK] [--cri SOCK]
SPEC_JSON: {"pods": [{"namespace", "name", "uid", "containers": [{"name", "id", "devices"}]}]}
(a device "dra:<name>" is served as a DRA claim of NVIDIA's driver, others as plugin IDs)
"""
import argparse
import json
import os
import sys
import tempfile
import time
from concurrent import futures

import grpc
from grpc_tools import protoc


def generate(proto_dir, out):
    for f in ("podresources/api.proto", "cri/api.proto"):
        include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
        rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
                          f"--grpc_python_out={out}", os.path.join(proto_dir, f)])
        if rc != 0:
            sys.exit(f"protoc failed on {f}")
    sys.path.insert(0, out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("proto_dir")
    p.add_argument("spec")
    p.add_argument("--pod-resources")
    p.add_argument("--cri")
    a = p.parse_args()
    with open(a.spec) as f:
        spec = json.load(f)
    out = tempfile.mkdtemp(prefix="gce-grpc-")
    generate(a.proto_dir, out)
    from podresources import api_pb2 as pr, api_pb2_grpc as pr_grpc
    from cri import api_pb2 as cri, api_pb2_grpc as cri_grpc

    class Lister(pr_grpc.PodResourcesListerServicer):
        def List(self, request, context):
            def container(p, c):
                # "dra:<device name>" is a DRA claim (as NVIDIA's DRA driver fills it), any
                # other string a device plugin ID of nvidia.com/gpu.
                plugin = [d for d in c.get("devices", []) if not d.startswith("dra:")]
                dra = [d[4:] for d in c.get("devices", []) if d.startswith("dra:")]
                return pr.ContainerResources(
                    name=c["name"],
                    devices=[pr.ContainerDevices(resource_name="nvidia.com/gpu",
                                                 device_ids=plugin)] if plugin else [],
                    dynamic_resources=[pr.DynamicResource(
                        claim_name=c["name"] + "-gpu", claim_namespace=p["namespace"],
                        claim_resources=[pr.ClaimResource(
                            driver_name="gpu.nvidia.com", pool_name="node-1", device_name=name,
                            cdi_devices=[pr.CDIDevice(
                                name="k8s.gpu.nvidia.com/claim=" + p["uid"] + "-" + name)])
                            for name in dra])] if dra else [])

            pods = [pr.PodResources(name=p["name"], namespace=p["namespace"],
                                    containers=[container(p, c) for c in p["containers"]])
                    for p in spec["pods"]]
            return pr.ListPodResourcesResponse(pod_resources=pods)

    class Runtime(cri_grpc.RuntimeServiceServicer):
        def ListPodSandbox(self, request, context):
            return cri.ListPodSandboxResponse(items=[cri.PodSandbox(
                id="sandbox-" + p["uid"], state=cri.SANDBOX_READY,
                metadata=cri.PodSandboxMetadata(name=p["name"], uid=p["uid"],
                                                namespace=p["namespace"]))
                for p in spec["pods"]])

        def ListContainers(self, request, context):
            return cri.ListContainersResponse(containers=[cri.Container(
                id=c["id"], pod_sandbox_id="sandbox-" + p["uid"], state=cri.CONTAINER_RUNNING,
                metadata=cri.ContainerMetadata(name=c["name"]))
                for p in spec["pods"] for c in p["containers"]])

    servers = []
    for sock, add in ((a.pod_resources, lambda s: pr_grpc.add_PodResourcesListerServicer_to_server(Lister(), s)),
                      (a.cri, lambda s: cri_grpc.add_RuntimeServiceServicer_to_server(Runtime(), s))):
        if not sock:
            continue
        if os.path.exists(sock):
            os.unlink(sock)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        add(server)
        server.add_insecure_port("unix:" + sock)
        server.start()
        servers.append(server)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
