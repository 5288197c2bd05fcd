using static Jetpack.Coordinator.Tests.Deploy.Manifest;

namespace Jetpack.Coordinator.Tests.Deploy;

/// <summary>
/// Offline consistency checks of a set of Kubernetes objects: every problem found, each naming the
/// object and the field, so one assertion shows all of them.
/// </summary>
public static class ManifestChecks
{
    static readonly string[] Workloads = ["Deployment", "StatefulSet", "DaemonSet"];

    public static List<string> Run(IReadOnlyList<Manifest> objects)
    {
        var problems = new List<string>();
        void Problem(Manifest m, string what) => problems.Add($"{m}: {what}");
        Manifest? Find(string kind, string name) => objects.FirstOrDefault(o => o.Kind == kind && o.Name == name);

        foreach (var dup in objects.GroupBy(o => (o.Kind, o.Name)).Where(g => g.Count() > 1))
            problems.Add($"{dup.Key.Kind}/{dup.Key.Name} defined {dup.Count()} times");

        var pods = objects.Where(o => Workloads.Contains(o.Kind)).Select(w => (Workload: w, Template: Path(w.Root, "spec", "template"))).ToList();
        bool Selects(Dictionary<string, string> selector, Dictionary<object, object>? template) =>
            selector.Count > 0 && selector.All(kv => Labels(Path(template, "metadata", "labels")).TryGetValue(kv.Key, out var v) && v == kv.Value);
        IEnumerable<Dictionary<object, object>> Containers(Dictionary<object, object>? template) =>
            List(Map(template, "spec"), "containers").OfType<Dictionary<object, object>>();
        static bool HasPort(Dictionary<object, object> container, string port) =>
            List(container, "ports").OfType<Dictionary<object, object>>().Any(p => Str(p, "name") == port || Str(p, "containerPort") == port);

        foreach (var (w, template) in pods)
        {
            var selector = Labels(Path(w.Root, "spec", "selector", "matchLabels"));
            if (!Selects(selector, template)) Problem(w, "spec.selector.matchLabels do not match the pod template's labels");
            var spec = Map(template, "spec");
            if (Str(spec, "serviceAccountName") is { } sa && Find("ServiceAccount", sa) is null) Problem(w, $"serviceAccountName '{sa}' has no ServiceAccount");
            if (w.Kind == "StatefulSet")
            {
                string? service = Str(w.Root["spec"], "serviceName");
                var headless = service is null ? null : Find("Service", service);
                if (headless is null || Str(headless.Root["spec"], "clusterIP") != "None") Problem(w, $"serviceName '{service}' is not a headless Service (clusterIP: None)");
            }
            foreach (var volume in List(spec, "volumes").OfType<Dictionary<object, object>>())
            {
                if (Map(volume, "configMap") is { } cm && Find("ConfigMap", Str(cm, "name") ?? "") is null) Problem(w, $"volume '{Str(volume, "name")}': ConfigMap '{Str(cm, "name")}' missing");
                if (Map(volume, "secret") is { } secret)
                {
                    var s = Find("Secret", Str(secret, "secretName") ?? "");
                    if (s is null) Problem(w, $"volume '{Str(volume, "name")}': Secret '{Str(secret, "secretName")}' missing");
                    else foreach (var item in List(secret, "items").OfType<Dictionary<object, object>>())
                        if (!SecretKeys(s).Contains(Str(item, "key") ?? "")) Problem(w, $"volume '{Str(volume, "name")}': Secret '{s.Name}' has no key '{Str(item, "key")}'");
                }
                if (Map(volume, "persistentVolumeClaim") is { } pvc && Find("PersistentVolumeClaim", Str(pvc, "claimName") ?? "") is null) Problem(w, $"volume '{Str(volume, "name")}': PersistentVolumeClaim '{Str(pvc, "claimName")}' missing");
            }
            var volumes = List(spec, "volumes").OfType<Dictionary<object, object>>().Select(v => Str(v, "name")).ToHashSet();
            foreach (var c in Containers(template))
            {
                string cn = $"container '{Str(c, "name")}'";
                var resources = Map(c, "resources");
                foreach (var part in new[] { "requests", "limits" })
                    foreach (var r in new[] { "cpu", "memory" })
                        if (Str(Map(resources, part), r) is null) Problem(w, $"{cn}: resources.{part}.{r} missing");
                foreach (var probeName in new[] { "livenessProbe", "readinessProbe", "startupProbe" })
                {
                    var probe = Map(c, probeName);
                    if (probe is null)
                    {
                        if (probeName != "startupProbe") Problem(w, $"{cn}: {probeName} missing");
                        continue;
                    }
                    string? port = Str(Map(probe, "httpGet"), "port") ?? Str(Map(probe, "tcpSocket"), "port") ?? Str(Map(probe, "grpc"), "port");
                    if (port is not null && !HasPort(c, port)) Problem(w, $"{cn}: {probeName} port '{port}' is not a container port");
                    if (port is null && Map(probe, "exec") is null) Problem(w, $"{cn}: {probeName} has no httpGet, tcpSocket, grpc or exec");
                }
                foreach (var mount in List(c, "volumeMounts").OfType<Dictionary<object, object>>())
                    if (!volumes.Contains(Str(mount, "name"))) Problem(w, $"{cn}: volumeMount '{Str(mount, "name")}' has no volume");
                foreach (var env in List(c, "env").OfType<Dictionary<object, object>>())
                {
                    var from = Map(env, "valueFrom");
                    if (Map(from, "secretKeyRef") is { } sk && (Find("Secret", Str(sk, "name") ?? "") is not { } s || !SecretKeys(s).Contains(Str(sk, "key") ?? "")))
                        Problem(w, $"{cn}: env {Str(env, "name")}: Secret '{Str(sk, "name")}' key '{Str(sk, "key")}' missing");
                    if (Map(from, "configMapKeyRef") is { } ck && (Find("ConfigMap", Str(ck, "name") ?? "") is not { } m || Map(m.Root, "data")?.ContainsKey(Str(ck, "key") ?? "") != true))
                        Problem(w, $"{cn}: env {Str(env, "name")}: ConfigMap '{Str(ck, "name")}' key '{Str(ck, "key")}' missing");
                }
            }
            // Prometheus pod annotations must point at a container port.
            var annotations = Labels(Path(template, "metadata", "annotations"));
            if (annotations.GetValueOrDefault("prometheus.io/scrape") == "true")
            {
                string port = annotations.GetValueOrDefault("prometheus.io/port") ?? "";
                if (!Containers(template).Any(c => List(c, "ports").OfType<Dictionary<object, object>>().Any(p => Str(p, "containerPort") == port)))
                    Problem(w, $"annotation prometheus.io/port '{port}' is not a container port");
            }
        }

        foreach (var service in objects.Where(o => o.Kind == "Service"))
        {
            var selector = Labels(Path(service.Root, "spec", "selector"));
            var selected = pods.Where(p => Selects(selector, p.Template)).ToList();
            if (selected.Count == 0) { Problem(service, "spec.selector matches no pod template"); continue; }
            foreach (var port in List(Map(service.Root, "spec"), "ports").OfType<Dictionary<object, object>>())
            {
                string target = Str(port, "targetPort") ?? Str(port, "port") ?? "";
                foreach (var (w, template) in selected)
                    if (!Containers(template).Any(c => HasPort(c, target)))
                        Problem(service, $"port '{Str(port, "name")}' targetPort '{target}' is not a container port of {w.Kind}/{w.Name}");
            }
        }

        foreach (var pdb in objects.Where(o => o.Kind == "PodDisruptionBudget"))
            if (!pods.Any(p => Selects(Labels(Path(pdb.Root, "spec", "selector", "matchLabels")), p.Template))) Problem(pdb, "selector matches no pod template");

        foreach (var binding in objects.Where(o => o.Kind == "RoleBinding"))
        {
            var roleRef = Map(binding.Root, "roleRef");
            if (Find(Str(roleRef, "kind") ?? "", Str(roleRef, "name") ?? "") is null) Problem(binding, $"roleRef {Str(roleRef, "kind")}/{Str(roleRef, "name")} missing");
            foreach (var subject in List(binding.Root, "subjects").OfType<Dictionary<object, object>>())
                if (Str(subject, "kind") == "ServiceAccount" && Find("ServiceAccount", Str(subject, "name") ?? "") is null) Problem(binding, $"subject ServiceAccount '{Str(subject, "name")}' missing");
        }
        return problems;
    }

    static HashSet<string> SecretKeys(Manifest secret) =>
        [.. new[] { Map(secret.Root, "data"), Map(secret.Root, "stringData") }.SelectMany(m => m?.Keys.AsEnumerable() ?? []).Select(k => k.ToString()!)];
}
