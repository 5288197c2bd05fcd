using System.Globalization;

namespace Jetpack.Application.Runs;

/// <summary>Class selections as users write them: "5-9", "0,2,4", "0-2,7" (ranges inclusive).</summary>
public static class ClassList
{
    /// <summary>Classes of the datasets a run names (fashion-mnist, cifar10: 10; cifar100: 100).</summary>
    public static int ClassCount(string dataset) => dataset == "cifar100" ? 100 : 10;

    /// <summary>
    /// The sorted classes, or null for all. Every class must lie in 0..<paramref name="classCount"/>−1,
    /// checked on the range's ends before any class is materialised ("0-2147483647" must not build 2³¹
    /// ints); errors name <paramref name="field"/>, the option or spec field the text came from.
    /// </summary>
    public static IReadOnlyList<int>? Parse(string? text, string field = "data.classes", int classCount = 10)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var set = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-');
            if (range.Length > 2 || !range.All(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                throw new ArgumentException($"{field}: '{part}' is not a class or a range like 0-4");
            int a = int.Parse(range[0], CultureInfo.InvariantCulture), b = int.Parse(range[^1], CultureInfo.InvariantCulture);
            if (Math.Max(a, b) >= classCount)
                throw new ArgumentException($"{field}: '{part}' goes beyond the dataset's {classCount} classes (0-{classCount - 1})");
            for (int c = Math.Min(a, b); c <= Math.Max(a, b); c++) set.Add(c);
        }
        if (set.Count == 0) throw new ArgumentException($"{field}: '{text}' names no class");
        return set.ToList();
    }
}
