using System.Diagnostics;
using Jetpack.Coordinator.Jobs;
using static Jetpack.Coordinator.Tests.Deploy.Manifest;

namespace Jetpack.Coordinator.Tests.Deploy;

/// <summary>deploy/k8s validated offline: the base's files and each overlay rendered by kubectl kustomize.</summary>
public class ManifestTests
{
    static readonly string Root = Support.RepoPaths.Root();
    static string K8s => System.IO.Path.Combine(Root, "deploy", "k8s");


    static List<Manifest> Base()
    {
        var kustomization = Parse("kustomization.yaml", File.ReadAllText(System.IO.Path.Combine(K8s, "base", "kustomization.yaml"))).Single();
        return List(kustomization.Root, "resources").Select(r => System.IO.Path.Combine(K8s, "base", r.ToString()!))
            .SelectMany(f => Parse(f, File.ReadAllText(f))).ToList();
    }

    /// <summary>kubectl on the PATH, and $JETPACK_KUBECTL too when set (e.g. Debian's 1.20 beside a newer one).</summary>
    static IEnumerable<string> Kubectls()
    {
        yield return "kubectl";
        if (Environment.GetEnvironmentVariable("JETPACK_KUBECTL") is { Length: > 0 } other) yield return other;
    }

    static List<Manifest> Render(string overlay, string kubectl)
    {
        var psi = new ProcessStartInfo(kubectl) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("kustomize");
        psi.ArgumentList.Add(System.IO.Path.Combine(K8s, "overlays", overlay));
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string yaml = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "kubectl kustomize did not finish in 60 s");
        Assert.True(p.ExitCode == 0, $"{kubectl} kustomize overlays/{overlay} failed: {err.Result}");
        return Parse($"overlays/{overlay} (rendered by {kubectl})", yaml).ToList();
    }

    static bool HaveKubectl => Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(d => File.Exists(System.IO.Path.Combine(d, "kubectl")));

    [Fact]
    public void EveryKustomizationReferencesFilesThatExistAndPatchesTargetBaseObjects()
    {
        var baseObjects = Base().Select(o => (o.Kind, o.Name)).ToHashSet();
        foreach (var file in Directory.EnumerateFiles(K8s, "kustomization.yaml", SearchOption.AllDirectories))
        {
            string dir = System.IO.Path.GetDirectoryName(file)!;
            var k = Parse(file, File.ReadAllText(file)).Single();
            foreach (var entry in List(k.Root, "resources").Concat(List(k.Root, "bases")).Select(e => e.ToString()!))
            {
                string path = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, entry));
                Assert.True(File.Exists(path) || File.Exists(System.IO.Path.Combine(path, "kustomization.yaml")), $"{file}: resource '{entry}' does not exist");
            }
            foreach (var patch in List(k.Root, "patchesStrategicMerge").Select(e => e.ToString()!))
            {
                string path = System.IO.Path.Combine(dir, patch);
                Assert.True(File.Exists(path), $"{file}: patch '{patch}' does not exist");
                foreach (var target in Parse(path, File.ReadAllText(path)))
                    Assert.True(baseObjects.Contains((target.Kind, target.Name)), $"{path}: patches {target.Kind}/{target.Name}, which the base does not define");
            }
        }
    }

    [Fact]
    public void TheBaseIsConsistent()
    {
        var objects = Base();
        Assert.Empty(ManifestChecks.Run(objects));
        foreach (var kind in new[] { "ServiceAccount", "Role", "RoleBinding", "Deployment", "StatefulSet", "PodDisruptionBudget", "Secret", "ConfigMap", "PersistentVolumeClaim" })
            Assert.Contains(objects, o => o.Kind == kind);
    }

    [Theory]
    [InlineData("dev")]
    [InlineData("gpu")]
    public void EachOverlayRendersWithKubectlAndIsConsistent(string overlay)
    {
        Assert.True(HaveKubectl, "kubectl not found: scripts/setup.sh installs Debian's kubernetes-client");
        foreach (var kubectl in Kubectls()) CheckRendered(overlay, Render(overlay, kubectl));
    }

    static void CheckRendered(string overlay, List<Manifest> objects)
    {
        Assert.Empty(ManifestChecks.Run(objects));
        var worker = objects.Single(o => o.Kind == "StatefulSet");
        var limits = Path(worker.Root, "spec", "template", "spec") is { } spec
            ? Map(Map(List(spec, "containers").OfType<Dictionary<object, object>>().Single(), "resources"), "limits") : null;
        Assert.Equal(overlay == "gpu", limits?.ContainsKey("nvidia.com/gpu") == true);
        Assert.All(objects.Where(o => o.Kind is "Deployment" or "StatefulSet" or "Service"), o => Assert.Equal($"jetpack{(overlay == "dev" ? "-dev" : "")}", Str(Map(o.Root, "metadata"), "namespace")));
    }

    [Fact]
    public void TheCoordinatorsArgumentsAgreeWithItsPortsAndTheRedisService()
    {
        var objects = Base();
        var coordinator = objects.Single(o => o.Kind == "Deployment" && o.Name == "jetpack-coordinator");
        var container = List(Path(coordinator.Root, "spec", "template", "spec"), "containers").OfType<Dictionary<object, object>>().Single();
        var args = List(container, "args").Select(a => a.ToString()!).ToList();
        var ports = List(container, "ports").OfType<Dictionary<object, object>>().ToDictionary(p => Str(p, "name")!, p => Str(p, "containerPort")!);
        Assert.Contains($"--port={ports["jobs"]}", args);
        Assert.Contains($"--metrics-port={ports["metrics"]}", args);
        Assert.Contains($"--silo-port={ports["silo"]}", args);
        Assert.Contains("--clustering=kubernetes", args);
        string redis = List(container, "env").OfType<Dictionary<object, object>>().Single(e => Str(e, "name") == "JETPACK_REDIS").Let(e => Str(e, "value")!);
        var redisService = objects.Single(o => o.Kind == "Service" && o.Name == redis.Split(':')[0]);
        Assert.Contains(List(Map(redisService.Root, "spec"), "ports").OfType<Dictionary<object, object>>(), p => Str(p, "port") == redis.Split(':')[1]);
        var labels = Labels(Path(coordinator.Root, "spec", "template", "metadata", "labels"));
        var env = List(container, "env").OfType<Dictionary<object, object>>().ToDictionary(e => Str(e, "name")!, e => Str(e, "value"));
        Assert.Equal(env["ORLEANS_SERVICE_ID"], labels["orleans/serviceId"]);   // Orleans Kubernetes hosting matches pods by these
        Assert.Equal(env["ORLEANS_CLUSTER_ID"], labels["orleans/clusterId"]);
    }

    [Fact]
    public void TheWorkersArgumentsParseWithTheWorkersOwnParserAndAgreeWithItsPortsAndProbes()
    {
        var objects = Base();
        var worker = objects.Single(o => o.Kind == "StatefulSet" && o.Name == "jetpack-worker");
        var container = List(Path(worker.Root, "spec", "template", "spec"), "containers").OfType<Dictionary<object, object>>().Single();
        var args = List(container, "args").Select(a => a.ToString()!.Replace("$(POD_NAME)", "jetpack-worker-0")).ToList();
        var ports = List(container, "ports").OfType<Dictionary<object, object>>().ToDictionary(p => Str(p, "name")!, p => int.Parse(Str(p, "containerPort")!));
        // the token file does not exist here: give the parser one in its place, then compare the path
        string tokenArg = args.Single(a => a.StartsWith("--token-file="));
        var token = System.IO.Path.GetTempFileName();
        try
        {
            File.WriteAllText(token, "0123456789abcdef0123");
            var o = Jetpack.GpuWorker.Hosting.WorkerCommandLine.Parse(args.Select(a => a == tokenArg ? $"--token-file={token}" : a).ToList());
            Assert.Equal((ports["control"], ports["data"], ports["metrics"]), (o.Port, o.DataPort, o.MetricsPort));
            Assert.Equal("jetpack-worker-0.jetpack-worker", o.Coordinator!.AdvertiseHost);
            Assert.Equal("jetpack-worker-0", o.Coordinator.WorkerId);
        }
        finally { File.Delete(token); }
        var mount = List(container, "volumeMounts").OfType<Dictionary<object, object>>().Single(m => Str(m, "name") == "cluster-token");
        Assert.StartsWith(Str(mount, "mountPath")! + "/", tokenArg["--token-file=".Length..]);
        foreach (var probe in new[] { "livenessProbe", "readinessProbe" })
            Assert.Equal("metrics", Str(Map(Map(container, probe), "httpGet"), "port"));
        var service = objects.Single(o => o.Kind == "Service" && o.Name == "jetpack-worker");
        Assert.Equal(ports.Keys.Order(), List(Map(service.Root, "spec"), "ports").OfType<Dictionary<object, object>>().Select(p => Str(p, "targetPort")!).Order());
    }

    [Fact]
    public void TheJobSpecConfigMapIsAJobSpec()
    {
        var cm = Base().Single(o => o.Kind == "ConfigMap" && o.Name == "jetpack-job");
        var spec = JobSpecReader.Parse(Str(Map(cm.Root, "data"), "job.yaml")!, "yaml", "job-configmap.yaml");
        Assert.Equal("v_jetmoe_t", spec.Model);
        Assert.Equal(2, spec.Workers);
    }

    [Fact]
    public void TheChecksFindABrokenReference()
    {
        // The validator must be able to fail: break a Service's targetPort, a Secret key and a probe port.
        var objects = Base();
        var service = objects.Single(o => o.Kind == "Service" && o.Name == "jetpack-coordinator");
        ((Dictionary<object, object>)List(Map(service.Root, "spec"), "ports")[0])["targetPort"] = "nope";
        var secret = objects.Single(o => o.Kind == "Secret");
        Map(secret.Root, "stringData")!.Remove("token");
        var worker = objects.Single(o => o.Kind == "StatefulSet");
        var container = (Dictionary<object, object>)List(Path(worker.Root, "spec", "template", "spec"), "containers")[0];
        Map(Map(container, "livenessProbe"), "httpGet")!["port"] = "9999";
        var problems = ManifestChecks.Run(objects);
        Assert.Contains(problems, p => p.Contains("Service/jetpack-coordinator") && p.Contains("targetPort 'nope'"));
        Assert.Contains(problems, p => p.Contains("has no key 'token'"));
        Assert.Contains(problems, p => p.Contains("livenessProbe port '9999'"));
    }
}

static class LetExtension
{
    public static TOut Let<TIn, TOut>(this TIn value, Func<TIn, TOut> f) => f(value);
}
