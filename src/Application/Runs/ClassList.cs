namespace Jetpack.Application.Runs;

/// <summary>Class selections as users write them: "5-9", "0,2,4", "0-2,7" (ranges inclusive).</summary>
public static class ClassList
{
    /// <summary>The sorted classes, or null for all; <paramref name="field"/> names the option or field in errors.</summary>
    public static IReadOnlyList<int>? Parse(string? text, string field = "data.classes")
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var set = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-');
            if (range.Length > 2 || !range.All(x => int.TryParse(x, out _)))
                throw new ArgumentException($"{field}: '{part}' is not a class or a range like 0-4");
            int a = int.Parse(range[0]), b = int.Parse(range[^1]);
            for (int c = Math.Min(a, b); c <= Math.Max(a, b); c++) set.Add(c);
        }
        return set.ToList();
    }
}
