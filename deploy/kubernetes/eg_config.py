# eg's configuration in the cluster (a ConfigMap made by kustomize from this file).
c = get_config()  # noqa: F821

# Kernels are pods in the gateway's namespace (EG_NAMESPACE, from the pod), each from this image.
c.KubernetesSettings.namespace_mode = "shared"
c.KubernetesSettings.image_name = "eg/kernel-py:local"
# Kernel sessions live in the cluster (pod annotations and a Secret per kernel): a restarted
# gateway, or another replica, finds every kernel.
c.Gateway.availability_mode = "replication"
c.KubernetesSettings.store_sessions = True
c.Gateway.default_kernel_name = "python_kubernetes"
# The image holds every plugin and so every plugin's kernelspecs; this gateway serves its pod ones.
c.Gateway.allowed_kernelspecs = {"python_kubernetes", "r_kubernetes"}
# No local kernels: in a pod they would run with the gateway's service account. The image has no
# local kernelspec, jupyter_client adds no python3 of its own (ensure_native_kernel), and the
# gateway refuses the local resource manager in a pod unless LocalResourceManager.allow_in_pod is
# set (not here).
c.KernelSpecManager.ensure_native_kernel = False
